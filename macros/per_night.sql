{% macro nights_to_build(candidates) -%}
    {#- The as-of dates of `candidates` this model (incremental or night_by_night) does
        not hold yet (all of them on a first or full build), oldest first, as
        'YYYY-MM-DD' strings. -#}
    {%- set holds_nights = execute and this is not none and load_relation(this) is not none and not should_full_refresh() -%}
    {{ return(as_of_dates_to_build(candidates, this if holds_nights else none)) }}
{%- endmacro %}

{% macro labelled_nights() -%}
    {#- The nights the label history holds (written by `custlabel score`), oldest first,
        as 'YYYY-MM-DD' strings; none before the first night (no table yet). -#}
    {%- set history = source('scoring', 'customer_label_history') -%}
    {%- set found = load_relation(history) if execute else none -%}
    {{ return(as_of_dates_to_build(found, none) if found is not none else []) }}
{%- endmacro %}

{% macro is_night_in(nights, column='as_of_date') -%}
    {#- True for the rows of the given nights ('YYYY-MM-DD' strings), compared to date
        constants; false for none. -#}
    {%- if nights -%}
    {{ column }} in ({% for night in nights %}'{{ night }}'::date{% if not loop.last %}, {% endif %}{% endfor %})
    {%- else -%}
    false
    {%- endif -%}
{%- endmacro %}

{% macro union_per_night(nights) -%}
    {#- The caller's query once per night (given the night as 'YYYY-MM-DD'), joined by
        union all, so that each night's bounds are constants: Postgres scans in
        parallel and compares to literals. The night_by_night materialization runs each
        night's query as a statement of its own. No nights: the caller's columns, no rows. -#}
    {%- for night in nights %}
    select * from ({{ caller(night) }}) as one_night
    {% if not loop.last %}{{ night_boundary() }}{% endif %}
    {%- else %}
    select * from ({{ caller('1900-01-01') }}) as no_night where false
    {%- endfor %}
{%- endmacro %}

{% macro night_boundary() -%}
    {#- Where union_per_night joins two nights; night_by_night splits the model there. -#}
    union all /* custlabel: next night */
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
