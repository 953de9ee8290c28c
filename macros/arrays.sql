{#- Arrays on each engine (see cross_engine.sql): a list without its nulls, and an item by
    its position from 1 (null past the end on both). -#}

{% macro array_without_nulls(items) -%}
    {{ return(adapter.dispatch('array_without_nulls', 'custlabel')(items)) }}
{%- endmacro %}
{% macro default__array_without_nulls(items) -%}
    array_remove(array[{{ items | join(', ') }}], null)
{%- endmacro %}
{% macro spark__array_without_nulls(items) -%}
    filter(array({{ items | join(', ') }}), item -> item is not null)
{%- endmacro %}

{% macro array_item(array, position) -%}
    {{ return(adapter.dispatch('array_item', 'custlabel')(array, position)) }}
{%- endmacro %}
{% macro default__array_item(array, position) %}{{ array }}[{{ position }}]{% endmacro %}
{% macro spark__array_item(array, position) %}try_element_at({{ array }}, {{ position }}){% endmacro %}

{% macro in_subquery(column, subquery) -%}
    {#- `column` among the values of `subquery`. On Postgres as `= any(array(...))`: the
        planner cannot count the array, so it probes an index on `column` for each value
        instead of hashing the subquery against a scan of every row. -#}
    {{ return(adapter.dispatch('in_subquery', 'custlabel')(column, subquery)) }}
{%- endmacro %}
{% macro default__in_subquery(column, subquery) %}{{ column }} = any(array({{ subquery }})){% endmacro %}
{% macro spark__in_subquery(column, subquery) %}{{ column }} in ({{ subquery }}){% endmacro %}
