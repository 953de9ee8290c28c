{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {#- dbt's staging query, with its CTEs inlined where that reads fewer rows: Postgres
        materializes a CTE used twice, which copied every current row of the snapshot
        each night before the join. Inlined, the few changed rows meet the snapshot through
        its index on the current versions' unique key. A snapshot that records deletions
        reads every source row to find the ones gone: its query stays computed once, not
        once for each of its three uses (the customers: 4.2 s against 1.8 s at 300,000). -#}
    {%- set staging = default__snapshot_staging_table(strategy, source_sql, target_relation)
        | replace('snapshotted_data as (', 'snapshotted_data as not materialized (') -%}
    {%- if strategy.hard_deletes == 'ignore' -%}
        {%- set staging = staging | replace('snapshot_query as (', 'snapshot_query as not materialized (') -%}
    {%- endif -%}
    {{ staging }}
{%- endmacro %}
