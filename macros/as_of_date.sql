{% macro as_of_date() -%}
    {#- Tonight, as a SQL date literal: the var as_of_date, or the day the run started. -#}
    {%- set value = var('as_of_date') or run_started_at.strftime('%Y-%m-%d') -%}
    '{{ value }}'::date
{%- endmacro %}

{% macro known_before(as_of) -%}
    {#- Events known at as_of happened before the end of that day. -#}
    ({{ as_of }} + 1)::timestamptz
{%- endmacro %}
