{% macro as_of_day() -%}
    {#- Tonight as 'YYYY-MM-DD': the var as_of_date, else the environment variable
        CUSTLABEL_AS_OF_DATE, else the last complete night. custlabel passes it in the
        environment and reads it at run time only: dbt parses the whole project again when
        a var changes, and the files that read an environment variable when it changes
        (8 to 9 s a night); no config depends on tonight. -#}
    {%- set night = var('as_of_date') or (env_var('CUSTLABEL_AS_OF_DATE', '') if execute else '') -%}
    {%- if not night -%}
        {{ return(last_complete_night()) }}
    {%- endif -%}
    {{ return(checked_day(night | string)) }}
{%- endmacro %}

{% macro checked_day(text) -%}
    {#- text if it is a date written YYYY-MM-DD, else a compilation error naming it: dbt
        pastes tonight into SQL. -#}
    {%- set parts = modules.re.match('^([0-9]{4})-([0-9]{2})-([0-9]{2})$', text) -%}
    {%- set year, month, day = (parts.groups() if parts else [0, 0, 0]) | map('int') -%}
    {%- set valid = 1 <= month <= 12 and 1 <= day and year >= 1 and (
        modules.datetime.date(year + month // 12, month % 12 + 1, 1) - modules.datetime.date(year, month, 1)).days >= day -%}
    {%- if not valid -%}
        {{ exceptions.raise_compiler_error("as_of_date must be a date written YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(text) }}
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
