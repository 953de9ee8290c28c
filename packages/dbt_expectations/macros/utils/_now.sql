{# Current time as a timestamp in the `dbt_date:time_zone` var (default UTC), like dbt_date.now() in the hub. #}
{% macro _now() -%}
    cast(current_timestamp at time zone '{{ var("dbt_date:time_zone", "UTC") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
