{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {#- dbt's staging query, with its CTEs inlined: Postgres materializes a CTE used
        twice, which copied every current row of the snapshot each night before the
        join. Inlined, the few changed rows meet the snapshot through its index on
        the current versions' unique key. -#}
    {{ default__snapshot_staging_table(strategy, source_sql, target_relation)
        | replace('snapshot_query as (', 'snapshot_query as not materialized (')
        | replace('snapshotted_data as (', 'snapshotted_data as not materialized (') }}
{%- endmacro %}
