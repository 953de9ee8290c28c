{% macro postgres__snapshot_get_time() -%}
    {#- The time a snapshot closes a version deleted from master data: dbt's is now() as a
        wall-clock time of the session's zone (custlabel's sessions run in the company's),
        read back as an instant in that zone, which the hour the clocks go back holds
        twice. now() is the instant itself, of the type of the snapshots' updated_at. -#}
    {{ current_timestamp() }}
{%- endmacro %}
