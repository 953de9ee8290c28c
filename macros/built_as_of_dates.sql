{% macro built_as_of_dates(relation) -%}
    {#- The as-of dates already in an incremental model, as a SQL list of date literals
        (constants let Postgres skip those nights before joining sales to nights). -#}
    {%- if execute -%}
        {%- set result = run_query("select distinct as_of_date::text from " ~ relation) -%}
        {%- set dates = result.columns[0].values() -%}
    {%- else -%}
        {%- set dates = [] -%}
    {%- endif -%}
    {%- for day in dates -%}
        '{{ day }}'::date{{ ", " if not loop.last }}
    {%- endfor -%}
    {%- if not dates -%}'0001-01-01'::date{%- endif -%}
{%- endmacro %}
