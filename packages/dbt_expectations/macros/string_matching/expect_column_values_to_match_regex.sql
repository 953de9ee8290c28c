{#
    Postgres `~`, matching anywhere in the string; flags become an embedded-options prefix "(?flags)".
    A null value does not match and fails, as in the hub on Postgres.
#}
{% test expect_column_values_to_match_regex(model, column_name,
                                            regex,
                                            row_condition=none,
                                            is_raw=false,
                                            flags="") %}
{%- set pattern = dbt_expectations._regex_with_flags(regex, flags) -%}
{{ dbt_expectations._rows_where_false(
    model,
    "coalesce(" ~ column_name ~ " ~ '" ~ (pattern | replace("'", "''")) ~ "', false)",
    row_condition,
) }}
{% endtest %}


{# Postgres reads backslashes literally (standard_conforming_strings), so is_raw needs no escaping here. #}
{% macro _regex_with_flags(regex, flags) -%}
    {%- set allowed = "bceimnpqstwx" -%}
    {%- set options = [] -%}
    {%- for flag in flags or "" -%}
        {%- if flag == "g" -%}
            {# "global" only matters to regexp_matches; a match test ignores it #}
        {%- elif flag in allowed -%}
            {%- do options.append(flag) -%}
        {%- else -%}
            {%- do exceptions.warn("flag " ~ flag ~ " is not a Postgres regex option (" ~ allowed ~ ")") -%}
        {%- endif -%}
    {%- endfor -%}
    {{- ("(?" ~ (options | join("")) ~ ")" if options else "") ~ regex -}}
{%- endmacro %}
