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
