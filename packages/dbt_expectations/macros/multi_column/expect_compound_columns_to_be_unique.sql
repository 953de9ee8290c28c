{# One row per duplicated key; ignore_row_if drops rows whose key is all null (default) or partly null. #}
{% test expect_compound_columns_to_be_unique(model,
                                             column_list,
                                             quote_columns=false,
                                             ignore_row_if="all_values_are_missing",
                                             row_condition=none) %}
{%- if not column_list -%}
    {{ exceptions.raise_compiler_error("`column_list` must be a non-empty list of columns.") }}
{%- endif -%}
{#- a row is skipped when its key columns are null, joined by and (all) / or (any) -#}
{%- set null_joiners = {"all_values_are_missing": " and ", "any_value_is_missing": " or "} -%}
{%- if ignore_row_if not in null_joiners -%}
    {{ exceptions.raise_compiler_error(
        "`ignore_row_if` must be one of " ~ (null_joiners.keys() | join(", ")) ~ ". Got: '" ~ ignore_row_if ~ "'."
    ) }}
{%- endif -%}
{%- set columns = [] -%}
{%- for column in column_list -%}
    {%- do columns.append(adapter.quote(column) if quote_columns else column) -%}
{%- endfor -%}
{%- set missing = [] -%}
{%- for column in columns -%}
    {%- do missing.append(column ~ " is null") -%}
{%- endfor -%}
select
    {{ columns | join(", ") }},
    count(*) as n_records
from {{ model }}
where not ({{ missing | join(null_joiners[ignore_row_if]) }})
{%- if row_condition %}
    and ({{ row_condition }})
{%- endif %}
group by {{ columns | join(", ") }}
having count(*) > 1
{% endtest %}
