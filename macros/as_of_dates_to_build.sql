{% macro as_of_dates_to_build(candidates, built) -%}
    {#- The as-of dates in `candidates` not yet in `built` (none: all of them), oldest
        first, as 'YYYY-MM-DD' strings: the nights an incremental model still has to
        build, for use as constants. -#}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select as_of_date::{{ type_text() }} from ({{ distinct_as_of_dates(candidates) }}) as candidates
        {%- if built is not none %}
        except
        select as_of_date::{{ type_text() }} from ({{ distinct_as_of_dates(built) }}) as built
        {%- endif %}
        order by 1
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}

{% macro distinct_as_of_dates(relation) -%}
    {#- The distinct as_of_date values of a relation by a loose index scan: one probe
        per date on an (as_of_date, ...) index instead of reading every row. -#}
    {{ return(adapter.dispatch('distinct_as_of_dates', 'custlabel')(relation)) }}
{%- endmacro %}

{% macro spark__distinct_as_of_dates(relation) -%}
    {#- Spark has no indexes (and the history marts are partitioned by as_of_date). -#}
    select distinct as_of_date from {{ relation }}
{%- endmacro %}

{% macro default__distinct_as_of_dates(relation) -%}
    with recursive dates as (
        select min(as_of_date) as as_of_date from {{ relation }}
        union all
        select (select min(as_of_date) from {{ relation }} where as_of_date > dates.as_of_date)
        from dates
        where dates.as_of_date is not null
    )
    select as_of_date from dates where as_of_date is not null
{%- endmacro %}
