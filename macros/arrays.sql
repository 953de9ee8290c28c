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
