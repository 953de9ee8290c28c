{#- The nights whose build read every row in its tests, and all of them passed: a small
    table in the monitoring schema, written by the on-run-end hook, read by
    full_checks_tonight() when the tests compile. -#}

{% macro full_check_nights() -%}
    {#- Spark's targets have no database. -#}
    {{ return(api.Relation.create(
        database=target.get('database'), schema=generate_schema_name('monitoring', none), identifier='full_check_nights')) }}
{%- endmacro %}

{% macro last_full_check_night() -%}
    {#- The newest night recorded in full_check_nights up to tonight, as 'YYYY-MM-DD', or
        none (no table yet, or none recorded). -#}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set nights = full_check_nights() -%}
    {%- set held = adapter.get_relation(nights.database, nights.schema, nights.identifier) -%}
    {%- if held is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select cast(max(as_of_date) as {{ type_text() }}) from {{ held }}
        where as_of_date <= cast('{{ as_of_day() }}' as date)
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{% macro reads_checked_since(node) -%}
    {#- A test whose rows depend on checked_since(): its `where` holds __checked_since__,
        or its SQL calls checked_since() (the reconciliation tests). -#}
    {{ return('__checked_since__' in (node.config.get('where') or '') or 'checked_since()' in node.raw_code) }}
{%- endmacro %}

{% macro record_full_check_night(results) -%}
    {#- on-run-end: tonight is a full-check night once every test that reads
        checked_since() ran with every row, in this invocation, and passed (or warned). A
        selection that left one out, or a failure, records nothing: the next build checks
        every row again. -#}
    {%- if not execute or not full_checks_tonight() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set checked = [] -%}
    {%- for result in results if result.status in ('pass', 'warn') -%}
        {%- do checked.append(result.node.unique_id) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'test' and reads_checked_since(node) -%}
        {%- if node.unique_id not in checked -%}
            {{ return('') }}
        {%- endif -%}
    {%- endfor -%}
    {%- set nights = full_check_nights() -%}
    {%- do adapter.create_schema(nights) -%}
    {%- call statement('full_check_nights', auto_begin=true) -%}
        create table if not exists {{ nights }} (
            as_of_date date, invocation_id {{ type_text() }}, recorded_at {{ type_timestamptz() }}
        ) {{ table_format() }}
    {%- endcall -%}
    {%- call statement('full_check_night', auto_begin=true) -%}
        insert into {{ nights }}
        select cast('{{ as_of_day() }}' as date), '{{ invocation_id }}', cast('{{ run_started_at.isoformat() }}' as {{ type_timestamptz() }})
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {{ return('') }}
{%- endmacro %}
