{# distinct non-null values / non-null values; a group with no non-null value passes. #}
{% test expect_column_proportion_of_unique_values_to_be_between(model, column_name,
                                                                min_value=none,
                                                                max_value=none,
                                                                group_by=none,
                                                                row_condition=none,
                                                                strictly=false) %}
{%- set expression -%}
    cast(count(distinct {{ column_name }}) as {{ dbt.type_float() }}) / nullif(count({{ column_name }}), 0)
{%- endset -%}
{{ dbt_expectations._aggregate_between(
    model, expression, min_value, max_value, group_by, row_condition, strictly
) }}
{% endtest %}
