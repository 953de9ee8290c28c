{% test expect_table_column_count_to_equal(model, value) %}
{%- set column_count = (adapter.get_columns_in_relation(model) | length) if execute else 0 -%}
select
    {{ column_count }} as column_count,
    {{ value }} as expected_column_count
where {{ column_count }} != {{ value }}
{% endtest %}
