{% macro hook_index(suffix, definition, unique=false) -%}
    {#- A post-hook's statement: the index <model>_<suffix> on the model's table
        (`definition`: its columns and any where clause), created when missing. On a
        --full-refresh the old table, renamed to dbt's backup until the end of the build,
        still holds an index of that name while the hooks run, and `if not exists` would
        skip the new table's: the backup's is dropped first. Nothing on Spark, which has
        no indexes (an empty hook is skipped). -#}
    {{ return(adapter.dispatch('hook_index', 'custlabel')(suffix, definition, unique)) }}
{%- endmacro %}

{% macro spark__hook_index(suffix, definition, unique) %}{{ return('') }}{% endmacro %}

{% macro default__hook_index(suffix, definition, unique) -%}
    {%- set name = this.identifier ~ '_' ~ suffix -%}
    do $$
    begin
        if exists (
            select from pg_indexes
            where schemaname = '{{ this.schema }}' and indexname = '{{ name }}' and tablename <> '{{ this.identifier }}'
        ) then
            execute format('drop index %I.%I', '{{ this.schema }}', '{{ name }}');
        end if;
    end $$;
    create {{ 'unique ' if unique }}index if not exists {{ name }} on {{ this }} {{ definition }}
{%- endmacro %}
