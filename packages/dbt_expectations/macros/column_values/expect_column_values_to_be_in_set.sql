{# A null value is not in the set, so it fails (as in the hub). #}
{% test expect_column_values_to_be_in_set(model, column_name,
                                          value_set,
                                          quote_values=true,
                                          row_condition=none) %}
{%- if not value_set -%}
    {{ exceptions.raise_compiler_error("expect_column_values_to_be_in_set needs a non-empty value_set.") }}
{%- endif -%}
{%- set values = [] -%}
{%- for value in value_set -%}
    {%- if quote_values -%}
        {%- do values.append("cast('" ~ (value | string | replace("'", "''")) ~ "' as " ~ dbt.type_string() ~ ")") -%}
    {%- else -%}
        {%- do values.append(value | string) -%}
    {%- endif -%}
{%- endfor -%}
{{ dbt_expectations._rows_where_false(
    model,
    "coalesce(" ~ column_name ~ " in (" ~ (values | join(", ")) ~ "), false)",
    row_condition,
) }}
{% endtest %}
