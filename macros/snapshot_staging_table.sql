{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {#- dbt's staging query, reading only the current versions of the changed keys. Its
        CTE of current versions is inlined (Postgres materializes a CTE used twice, which
        copied every current version each night before the join), and, when the snapshot
        looks for no hard deletes (which need every current version), it reads the current
        versions of the keys in the changed rows only: an array of them, each a probe of
        the index on the current versions' unique key, not a hash join over a scan of them
        all. The changed rows themselves (snapshot_query) stay one CTE, computed once. -#}
    {%- set staging = default__snapshot_staging_table(strategy, source_sql, target_relation)
        | replace('snapshotted_data as (', 'snapshotted_data as not materialized (') -%}
    {%- if strategy.hard_deletes in ('invalidate', 'new_record') or strategy.unique_key is not string -%}
        {{ return(staging) }}
    {%- endif -%}
    {%- set current_versions = 'from ' ~ target_relation -%}
    {%- if staging.count(current_versions) != 1 -%}
        {{ exceptions.raise_compiler_error(
            "postgres__snapshot_staging_table expects dbt's staging query to read " ~ target_relation ~ " once") }}
    {%- endif -%}
    {%- set key = strategy.unique_key -%}
    {{ return(staging | replace(current_versions,
        'from (select * from ' ~ target_relation ~ ' where ' ~ key ~ ' = any(array(select ' ~ key
        ~ ' from snapshot_query))) as versions_of_changed_keys')) }}
{%- endmacro %}
