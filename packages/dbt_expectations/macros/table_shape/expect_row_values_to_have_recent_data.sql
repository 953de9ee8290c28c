{# Fails when the latest non-future value is older than `interval` `datepart`s before now (or no row qualifies). #}
{% test expect_row_values_to_have_recent_data(model, column_name,
                                              datepart,
                                              interval,
                                              row_condition=none) %}
{%- set value = "cast(" ~ column_name ~ " as " ~ dbt.type_timestamp() ~ ")" -%}
with latest as (

    select max({{ value }}) as max_timestamp
    from {{ model }}
    where {{ value }} <= {{ dbt_expectations._now() }}
    {%- if row_condition %}
        and ({{ row_condition }})
    {%- endif %}

)

select *
from latest
where coalesce(max_timestamp, cast('1970-01-01' as {{ dbt.type_timestamp() }}))
    < {{ dbt.dateadd(datepart, -1 * interval, dbt_expectations._now()) }}
{% endtest %}
