{% macro postgres__collect_freshness(source, loaded_at_field, filter) %}
    {#- dbt's source freshness, judged at the night being built: only rows loaded by the
        end of that night count, and their age is measured from it (or from now, when
        that is earlier), so a replay reports the data's real dates. -#}
    {%- set judged_at = "least(" ~ current_timestamp() ~ ", " ~ known_before(as_of_date()) ~ ")" -%}
    {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
        select
            max({{ loaded_at_field }}) as max_loaded_at,
            {{ judged_at }} as snapshotted_at
        from {{ source }}
        where {{ loaded_at_field }} <= {{ judged_at }}
        {%- if filter %}
            and ({{ filter }})
        {%- endif %}
    {% endcall %}
    {{ return(load_result('collect_freshness')) }}
{% endmacro %}
