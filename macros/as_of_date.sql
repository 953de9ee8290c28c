{% macro as_of_day() -%}
    {#- Tonight as 'YYYY-MM-DD': the var as_of_date, or the day the run started. -#}
    {{ return((var('as_of_date') or run_started_at.strftime('%Y-%m-%d')) | string) }}
{%- endmacro %}

{% macro as_of_date() -%}
    {#- Tonight, as a SQL date literal. -#}
    '{{ as_of_day() }}'::date
{%- endmacro %}

{% macro known_before(as_of) -%}
    {#- Events known at as_of happened before the end of that day. -#}
    ({{ as_of }} + 1)::timestamptz
{%- endmacro %}

{% macro day_start(day, offset_days) -%}
    {#- The start of the day offset_days after day ('YYYY-MM-DD'), as a timestamptz
        literal: Postgres compares it as a constant, where (date + n)::timestamptz is
        computed again for every row. -#}
    {%- set start = modules.datetime.date.fromisoformat(day) + modules.datetime.timedelta(days=offset_days) -%}
    '{{ start.isoformat() }}'::timestamptz
{%- endmacro %}
