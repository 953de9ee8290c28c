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

{% macro array_of(items) -%}
    {#- An array of the given expressions. -#}
    {{ return(adapter.dispatch('array_of', 'custlabel')(items)) }}
{%- endmacro %}
{% macro default__array_of(items) %}array[{{ items | join(', ') }}]{% endmacro %}
{% macro spark__array_of(items) %}array({{ items | join(', ') }}){% endmacro %}

{% macro quantiles(expression, fractions) -%}
    {#- The continuous quantiles (linear interpolation) of an aggregated expression, as an array. -#}
    {{ return(adapter.dispatch('quantiles', 'custlabel')(expression, fractions)) }}
{%- endmacro %}
{% macro default__quantiles(expression, fractions) -%}
    percentile_cont(array[{{ fractions | join(', ') }}]) within group (order by {{ expression }})
{%- endmacro %}
{% macro spark__quantiles(expression, fractions) -%}
    percentile({{ expression }}, array({{ fractions | join(', ') }}))
{%- endmacro %}

{% macro sorted_array_agg(value, order_by, condition) -%}
    {#- The aggregated rows' values where condition holds, ordered by order_by (null when none on
        Postgres, empty on Spark: bucket_of and array_position_of read both alike). -#}
    {{ return(adapter.dispatch('sorted_array_agg', 'custlabel')(value, order_by, condition)) }}
{%- endmacro %}
{% macro default__sorted_array_agg(value, order_by, condition) -%}
    array_agg({{ value }} order by {{ order_by }}) filter (where {{ condition }})
{%- endmacro %}
{% macro spark__sorted_array_agg(value, order_by, condition) -%}
    transform(
        array_sort(collect_list(case when {{ condition }} then named_struct('key', {{ order_by }}, 'value', {{ value }}) end)),
        item -> item.value
    )
{%- endmacro %}

{% macro bucket_of(value, edges) -%}
    {#- How many of the sorted edges are at most value (Postgres's width_bucket); null for a null value or edges. -#}
    {{ return(adapter.dispatch('bucket_of', 'custlabel')(value, edges)) }}
{%- endmacro %}
{% macro default__bucket_of(value, edges) %}width_bucket({{ value }}, {{ edges }}){% endmacro %}
{% macro spark__bucket_of(value, edges) -%}
    case when {{ value }} is not null and {{ edges }} is not null and size({{ edges }}) > 0
        then size(filter({{ edges }}, edge -> edge <= {{ value }})) end
{%- endmacro %}

{% macro array_position_of(array, value) -%}
    {#- The position (from 1) of a value in an array, null when it is not there. -#}
    {{ return(adapter.dispatch('array_position_of', 'custlabel')(array, value)) }}
{%- endmacro %}
{% macro default__array_position_of(array, value) %}array_position({{ array }}, {{ value }}){% endmacro %}
{% macro spark__array_position_of(array, value) %}nullif(array_position({{ array }}, {{ value }}), 0){% endmacro %}

{% macro numbered_cells(items, alias) -%}
    {#- A join that gives each row one row per item, as alias (bin, position), position from 1. -#}
    {{ return(adapter.dispatch('numbered_cells', 'custlabel')(items, alias)) }}
{%- endmacro %}
{% macro default__numbered_cells(items, alias) -%}
    cross join lateral unnest(array[
        {{ items | join(', ') }}
    ]) with ordinality as {{ alias }} (bin, position)
{%- endmacro %}
{% macro spark__numbered_cells(items, alias) -%}
    lateral view inline(transform(array(
        {{ items | join(', ') }}
    ), (bin, index) -> named_struct('bin', bin, 'position', index + 1))) {{ alias }} as bin, position
{%- endmacro %}

{% macro in_subquery(column, subquery) -%}
    {#- `column` among the values of `subquery`. On Postgres as `= any(array(...))`: the
        planner cannot count the array, so it probes an index on `column` for each value
        instead of hashing the subquery against a scan of every row. -#}
    {{ return(adapter.dispatch('in_subquery', 'custlabel')(column, subquery)) }}
{%- endmacro %}
{% macro default__in_subquery(column, subquery) %}{{ column }} = any(array({{ subquery }})){% endmacro %}
{% macro spark__in_subquery(column, subquery) %}{{ column }} in ({{ subquery }}){% endmacro %}
