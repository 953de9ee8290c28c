{% macro full_checks_tonight() -%}
    {#- Whether tonight's tests read every row: on a --full-refresh, when the var
        full_checks is 'always' (the operator asks), and with 'weekly' (the default) when
        no full check is recorded in the six nights before tonight or tonight itself
        (full_check_nights.sql): a night missed, or whose checks failed, moves the full
        check to the next night built, not a week later.
        Other nights check the rows of the last week only. -#}
    {%- set asked = var('full_checks') -%}
    {%- if flags.FULL_REFRESH or asked == 'always' -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set last = last_full_check_night() -%}
    {%- if last is none -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set tonight = modules.datetime.date.fromisoformat(as_of_day()) -%}
    {{ return((tonight - modules.datetime.date.fromisoformat(last)).days >= 7) }}
{%- endmacro %}

{% macro checked_since() -%}
    {#- The first night whose rows tonight's tests check, as a SQL date literal (the
        week ending tonight), or none when they check every row (full_checks_tonight). -#}
    {%- if full_checks_tonight() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set first = modules.datetime.date.fromisoformat(as_of_day()) - modules.datetime.timedelta(days=6) -%}
    {{ return("cast('" ~ first.isoformat() ~ "' as date)") }}
{%- endmacro %}

{% macro first_unchecked_night() -%}
    {#- The first night whose rows tonight's tests of the night-by-night marts check, as
        a SQL date literal: the night after the newest night before tonight whose build
        checked them and passed (checked_nights), so tonight alone after a night that
        passed, and the nights since the last that passed after one that failed or was
        not built. Their rows are written once, so a night checked is not checked again
        before the next full check. The week ending tonight (checked_since()) when none is
        recorded; none on a full-check night. -#}
    {%- set week = checked_since() -%}
    {%- set last = last_checked_night() if week is not none else none -%}
    {%- if last is none -%}
        {{ return(week) }}
    {%- endif -%}
    {%- set first = modules.datetime.date.fromisoformat(last) + modules.datetime.timedelta(days=1) -%}
    {{ return("cast('" ~ first.isoformat() ~ "' as date)") }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {#- dbt's, plus two placeholders in a test's `where`, __checked_since__ and
        __first_unchecked_night__: the test reads every row on a full-check night (the
        where is dropped), and the rows since checked_since() or first_unchecked_night()
        on the others. -#}
    {%- set where = with_first_night(config.get('where') or '', '__checked_since__', checked_since) -%}
    {%- set where = with_first_night(where, '__first_unchecked_night__', first_unchecked_night) -%}
    {%- if where -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro with_first_night(where, placeholder, first_night) -%}
    {#- `where` with the placeholder replaced by first_night(); empty when first_night() is
        none (a full-check night: every row is read). -#}
    {%- if placeholder not in where -%}
        {{ return(where) }}
    {%- endif -%}
    {%- set first = first_night() -%}
    {{ return('' if first is none else where | replace(placeholder, first)) }}
{%- endmacro %}
