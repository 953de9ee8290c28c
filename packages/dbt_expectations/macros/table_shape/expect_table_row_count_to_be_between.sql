{#- With a lower bound only, the count stops one row past it: whether a table of
    22 million sales holds a row is known from its first row, not from a count of all. -#}
{% test expect_table_row_count_to_be_between(model,
                                             min_value=none,
                                             max_value=none,
                                             group_by=none,
                                             row_condition=none,
                                             strictly=false) %}
{%- if min_value is not none and max_value is none and not group_by %}
{%- set rows_enough = "(select 1 from " ~ model ~ (" where " ~ row_condition if row_condition else "")
    ~ " limit " ~ ((min_value | int) + 1) ~ ") as rows_enough" %}
{{ dbt_expectations._aggregate_between(rows_enough, "count(*)", min_value, max_value, none, none, strictly) }}
{%- else %}
{{ dbt_expectations._aggregate_between(
    model, "count(*)", min_value, max_value, group_by, row_condition, strictly
) }}
{%- endif %}
{% endtest %}
