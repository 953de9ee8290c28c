{# Continuous (interpolated) quantile, Postgres percentile_cont. #}
{% test expect_column_quantile_values_to_be_between(model, column_name,
                                                    quantile,
                                                    min_value=none,
                                                    max_value=none,
                                                    group_by=none,
                                                    row_condition=none,
                                                    strictly=false) %}
{%- set expression -%}
    percentile_cont({{ quantile }}) within group (order by {{ column_name }})
{%- endset -%}
{{ dbt_expectations._aggregate_between(
    model, expression, min_value, max_value, group_by, row_condition, strictly
) }}
{% endtest %}
