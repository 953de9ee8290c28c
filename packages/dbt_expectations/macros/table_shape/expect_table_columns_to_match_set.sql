{# One row per column found only in the relation or only in column_list, compared after `transform`. #}
{% test expect_table_columns_to_match_set(model, column_list, transform="upper") %}
{%- if execute -%}
    {%- set relation_columns = dbt_expectations._column_names(model, transform) -%}
    {%- set expected_columns = column_list | map(transform) | list -%}
{%- else -%}
    {%- set relation_columns = [] -%}
    {%- set expected_columns = [] -%}
{%- endif -%}
with relation_columns as (
    {{ dbt_expectations._values_as_rows(relation_columns, "column_name") }}
),

expected_columns as (
    {{ dbt_expectations._values_as_rows(expected_columns, "column_name") }}
)

select
    relation_columns.column_name as relation_column,
    expected_columns.column_name as input_column
from relation_columns
full outer join expected_columns
    on relation_columns.column_name = expected_columns.column_name
where relation_columns.column_name is null
    or expected_columns.column_name is null
{% endtest %}


{% macro _column_names(relation, transform="upper") -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute="name") | map(transform) | list) }}
{%- endmacro %}


{% macro _values_as_rows(values, alias) -%}
    {%- if values -%}
    select {{ alias }}
    from (values
        {%- for value in values %}
        ('{{ value | replace("'", "''") }}'){% if not loop.last %},{% endif %}
        {%- endfor %}
    ) as t ({{ alias }})
    {%- else -%}
    select cast(null as {{ dbt.type_string() }}) as {{ alias }} where false
    {%- endif -%}
{%- endmacro %}
