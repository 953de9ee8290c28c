{% macro changed_since_last_build(relation, column) -%}
    {#- The newest `column` value in relation that is not in the future, less a day for
        late commits, as a timestamptz literal ('-infinity' when relation is empty): rows
        updated after it may be new since the last build. A literal, so that Postgres
        estimates the few changed rows and reaches them through indexes. -#}
    {%- if not execute -%}
        {{ return(earliest_time()) }}
    {%- endif -%}
    {%- set query -%}
        select (max({{ column }}) - interval '1 day')::{{ type_text() }} from {{ relation }} where {{ column }} <= now()
    {%- endset -%}
    {%- set newest = run_query(query).columns[0].values()[0] -%}
    {{ return("'" ~ newest ~ "'::" ~ type_timestamptz() if newest else earliest_time()) }}
{%- endmacro %}
