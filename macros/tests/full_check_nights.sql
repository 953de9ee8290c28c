{#- The nights whose build's tests passed, in two small tables of the monitoring schema,
    written by the on-run-end hooks and read by the tests when they compile:
    full_check_nights (every row read: full_checks_tonight()) and checked_nights (the
    nights of the night-by-night marts read since the last such night:
    first_unchecked_night()). -#}

{% macro checks_recorded(identifier) -%}
    {#- Spark's targets have no database. -#}
    {{ return(api.Relation.create(
        database=target.get('database'), schema=generate_schema_name('monitoring', none), identifier=identifier)) }}
{%- endmacro %}

{% macro full_check_nights() -%}
    {{ return(checks_recorded('full_check_nights')) }}
{%- endmacro %}

{% macro checked_nights() -%}
    {{ return(checks_recorded('checked_nights')) }}
{%- endmacro %}

{% macro newest_night_recorded(recorded, comparison) -%}
    {#- The newest night of a checks_recorded table whose as_of_date compares to tonight
        by `comparison` ('<=', '<'), as 'YYYY-MM-DD', or none (no table yet, or none
        recorded). -#}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set held = adapter.get_relation(recorded.database, recorded.schema, recorded.identifier) -%}
    {%- if held is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select cast(max(as_of_date) as {{ type_text() }}) from {{ held }}
        where as_of_date {{ comparison }} cast('{{ as_of_day() }}' as date)
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{% macro last_full_check_night() -%}
    {#- The newest full-check night up to tonight. -#}
    {{ return(newest_night_recorded(full_check_nights(), '<=')) }}
{%- endmacro %}

{% macro last_checked_night() -%}
    {#- The newest night before tonight whose tests of the night-by-night marts passed. -#}
    {{ return(newest_night_recorded(checked_nights(), '<')) }}
{%- endmacro %}

{% macro reads_checked_since(node) -%}
    {#- A test whose rows depend on checked_since() or first_unchecked_night(): its
        `where` holds __checked_since__ or __first_unchecked_night__, or its SQL calls
        checked_since() (the reconciliation tests). -#}
    {%- set where = node.config.get('where') or '' -%}
    {{ return('__checked_since__' in where or reads_unchecked_nights(node) or 'checked_since()' in node.raw_code) }}
{%- endmacro %}

{% macro reads_unchecked_nights(node) -%}
    {{ return('__first_unchecked_night__' in (node.config.get('where') or '')) }}
{%- endmacro %}

{% macro all_ran_and_passed(results, reads) -%}
    {#- Whether every test for which `reads(node)` is true ran in this invocation and
        passed (or warned): a selection that left one out, or a failure, is not. -#}
    {%- set checked = [] -%}
    {%- for result in results if result.status in ('pass', 'warn') -%}
        {%- do checked.append(result.node.unique_id) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'test' and reads(node) -%}
        {%- if node.unique_id not in checked -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}

{% macro record_night(recorded) -%}
    {#- Adds tonight to a checks_recorded table (created when missing). -#}
    {%- do adapter.create_schema(recorded) -%}
    {%- call statement('create_' ~ recorded.identifier, auto_begin=true) -%}
        create table if not exists {{ recorded }} (
            as_of_date date, invocation_id {{ type_text() }}, recorded_at {{ type_timestamptz() }}
        ) {{ table_format() }}
    {%- endcall -%}
    {%- call statement('record_' ~ recorded.identifier, auto_begin=true) -%}
        insert into {{ recorded }}
        select cast('{{ as_of_day() }}' as date), '{{ invocation_id }}', cast('{{ run_started_at.isoformat() }}' as {{ type_timestamptz() }})
    {%- endcall -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{% macro record_full_check_night(results) -%}
    {#- on-run-end: tonight is a full-check night once every test that reads
        checked_since() ran with every row, in this invocation, and passed (or warned). A
        selection that left one out, or a failure, records nothing: the next build checks
        every row again. -#}
    {%- if execute and full_checks_tonight() and all_ran_and_passed(results, reads_checked_since) -%}
        {%- do record_night(full_check_nights()) -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{% macro record_checked_night(results) -%}
    {#- on-run-end: tonight's rows of the night-by-night marts, and those of every night
        since the last checked one, are checked once every test that reads
        first_unchecked_night() ran in this invocation and passed (or warned). Otherwise
        nothing is recorded, and the next build checks those nights again. -#}
    {%- if execute and all_ran_and_passed(results, reads_unchecked_nights) -%}
        {%- do record_night(checked_nights()) -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
