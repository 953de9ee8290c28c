{# Bounds check on an expression; `strictly` turns >= / <= into > / <. #}
{% macro _between_condition(expression, min_value=none, max_value=none, strictly=false) -%}
    {%- if min_value is none and max_value is none -%}
        {{ exceptions.raise_compiler_error("You have to provide either a min_value, max_value or both.") }}
    {%- endif -%}
    {%- set bounds = [] -%}
    {%- if min_value is not none -%}
        {%- do bounds.append(expression ~ (" > " if strictly else " >= ") ~ min_value) -%}
    {%- endif -%}
    {%- if max_value is not none -%}
        {%- do bounds.append(expression ~ (" < " if strictly else " <= ") ~ max_value) -%}
    {%- endif -%}
    ({{ bounds | join(" and ") }})
{%- endmacro %}


{# One row per group (or one row for the table) whose aggregate is out of bounds; a null aggregate passes. #}
{% macro _aggregate_between(model, expression, min_value, max_value, group_by, row_condition, strictly) %}
with grouped as (

    select
        {% for column in group_by or [] -%}
        {{ column }},
        {% endfor -%}
        {{ expression }} as expression
    from {{ model }}
    {% if row_condition -%}
    where {{ row_condition }}
    {% endif -%}
    {% if group_by -%}
    group by {{ group_by | join(", ") }}
    {%- endif %}

)

select *
from grouped
where not {{ dbt_expectations._between_condition("expression", min_value, max_value, strictly) }}
{% endmacro %}
