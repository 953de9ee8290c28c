{% macro postgres__collect_freshness(source, loaded_at_field, filter) %}
    {#- dbt's source freshness with custlabel's rule (python/custlabel/freshness.py):
        night T is covered by a load made after it ended (in CUSTLABEL_TIMEZONE); tonight's
        load is judged by its age now, a replay's is fresh by definition (age 0). A load
        before the night ended counts as none. Rows without a load time (a view's
        loaded_at left null) are judged on their newest updated_at: fresh when it is after
        the night ended, else by its age at the night's end. -#}
    {%- set ended = known_before(as_of_date()) -%}
    {%- set replay = as_of_day() < last_complete_night() -%}
    {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
        with newest as (
            select
                max({{ loaded_at_field }}) as loaded,
                max(updated_at) as changed,
                max(updated_at) filter (where updated_at < {{ ended }}) as changed_by_night
            from {{ source }}
            {%- if filter %}
            where ({{ filter }})
            {%- endif %}
        )
        select
            case
                when loaded is not null then case when loaded >= {{ ended }} then loaded end
                when changed >= {{ ended }} then changed
                else changed_by_night
            end as max_loaded_at,
            case
                when loaded is not null then {{ 'loaded' if replay else current_timestamp() }}
                when changed >= {{ ended }} then changed
                else {{ ended }}
            end as snapshotted_at
        from newest
    {% endcall %}
    {{ return(load_result('collect_freshness')) }}
{% endmacro %}
