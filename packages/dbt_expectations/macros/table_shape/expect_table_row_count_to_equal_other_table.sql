{#
    Row count (per group) must equal compare_model's row count times factor.
    As in the hub, compare_group_by defaults to group_by and compare_row_condition to row_condition.
#}
{% test expect_table_row_count_to_equal_other_table(model,
                                                    compare_model,
                                                    group_by=none,
                                                    compare_group_by=none,
                                                    factor=1,
                                                    row_condition=none,
                                                    compare_row_condition=none) %}
{%- set group_by = group_by or [] -%}
{%- set compare_group_by = compare_group_by or group_by -%}
{%- set compare_row_condition = compare_row_condition or row_condition -%}
{%- if compare_group_by | length != group_by | length -%}
    {{ exceptions.raise_compiler_error("group_by and compare_group_by must have the same number of columns.") }}
{%- endif -%}
with model_counts as (
    {{ dbt_expectations._grouped_row_count(model, group_by, row_condition) }}
),

compare_counts as (
    {{ dbt_expectations._grouped_row_count(compare_model, compare_group_by, compare_row_condition, factor) }}
),

final as (

    select
        {% for column in group_by -%}
        coalesce(model_counts.group_{{ loop.index }}, compare_counts.group_{{ loop.index }}) as group_{{ loop.index }},
        {% endfor -%}
        model_counts.row_count,
        compare_counts.row_count as compare_row_count
    from model_counts
    {% if group_by -%}
    full outer join compare_counts
        on {% for column in group_by -%}
        model_counts.group_{{ loop.index }} = compare_counts.group_{{ loop.index }}
        {%- if not loop.last %} and {% endif %}
        {%- endfor %}
    {%- else -%}
    cross join compare_counts
    {%- endif %}

)

select *
from final
where coalesce(row_count, 0) != coalesce(compare_row_count, 0)
{% endtest %}


{% macro _grouped_row_count(relation, group_by, row_condition, factor=1) %}
    select
        {% for column in group_by -%}
        {{ column }} as group_{{ loop.index }},
        {% endfor -%}
        count(*) * {{ factor }} as row_count
    from {{ relation }}
    {% if row_condition -%}
    where {{ row_condition }}
    {% endif -%}
    {% if group_by -%}
    group by {{ group_by | join(", ") }}
    {%- endif %}
{% endmacro %}
