{% macro nights_to_build(candidates) -%}
    {#- The as-of dates of `candidates` this incremental model does not hold yet (all
        of them on a full build), oldest first, as 'YYYY-MM-DD' strings. -#}
    {{ return(as_of_dates_to_build(candidates, this if is_incremental() else none)) }}
{%- endmacro %}

{% macro union_per_night(nights) -%}
    {#- The caller's query once per night (given the night as 'YYYY-MM-DD'), joined by
        union all, so that each night's bounds are constants: Postgres scans in
        parallel and compares to literals. No nights: the caller's columns, no rows. -#}
    {%- for night in nights %}
    ({{ caller(night) }})
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select * from ({{ caller('1900-01-01') }}) as no_night where false
    {%- endfor %}
{%- endmacro %}

{% macro is_new_night(column='as_of_date') -%}
    {#- True for the nights an incremental monitoring mart still has to (re)build: those
        newer than the newest it holds, and tonight again; true for all on a full build. -#}
    {%- if is_incremental() -%}
    ({{ column }} > (select coalesce(max(as_of_date), '0001-01-01'::date) from {{ this }})
        or {{ column }} = {{ as_of_date() }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
