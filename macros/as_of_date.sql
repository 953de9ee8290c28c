{% macro as_of_day() -%}
    {#- Tonight as 'YYYY-MM-DD': the var as_of_date, or the last complete night. -#}
    {{ return((var('as_of_date') or last_complete_night()) | string) }}
{%- endmacro %}

{% macro last_complete_night() -%}
    {#- The day before the one the run started on, in the time zone CUSTLABEL_TIMEZONE
        (default UTC), as 'YYYY-MM-DD': a run after midnight labels the night that ended. -#}
    {%- set zone = modules.pytz.timezone(env_var('CUSTLABEL_TIMEZONE', 'UTC')) -%}
    {%- set started = run_started_at.astimezone(zone).date() -%}
    {{ return((started - modules.datetime.timedelta(days=1)).isoformat()) }}
{%- endmacro %}

{% macro last_matured_night(window_days) -%}
    {#- The newest as-of date whose outcome window (T, T + W] is entirely in the past,
        with var('label_grace_days') more days for late data: T + W + grace no later than
        tonight, nor than the last complete night at run time (in CUSTLABEL_TIMEZONE). -#}
    {%- set newest_end = [as_of_day(), last_complete_night()] | min -%}
    {%- set waited = window_days + var('label_grace_days', 0) -%}
    {%- set matured = modules.datetime.date.fromisoformat(newest_end) - modules.datetime.timedelta(days=waited) -%}
    {{ return(matured.isoformat()) }}
{%- endmacro %}

{% macro as_of_date() -%}
    {#- Tonight, as a SQL date literal. -#}
    '{{ as_of_day() }}'::date
{%- endmacro %}

{% macro known_before(as_of) -%}
    {#- Events known at as_of happened before the end of that day: midnight after it in
        the session's time zone, which every session sets to CUSTLABEL_TIMEZONE. -#}
    ({{ as_of }} + 1)::{{ type_timestamptz() }}
{%- endmacro %}

{% macro day_start(day, offset_days) -%}
    {#- The start of the day offset_days after day ('YYYY-MM-DD') in the session's time
        zone (CUSTLABEL_TIMEZONE), as a timestamptz literal: Postgres compares it as a constant, where (date + n)::timestamptz is
        computed again for every row. -#}
    {%- set start = modules.datetime.date.fromisoformat(day) + modules.datetime.timedelta(days=offset_days) -%}
    '{{ start.isoformat() }}'::{{ type_timestamptz() }}
{%- endmacro %}
