{% macro age_band(birth_date, at_date) -%}
    case
        when {{ birth_date }} is null then 'unknown'
        when {{ full_years_between(birth_date, at_date) }} < 25 then '18-24'
        when {{ full_years_between(birth_date, at_date) }} < 35 then '25-34'
        when {{ full_years_between(birth_date, at_date) }} < 50 then '35-49'
        when {{ full_years_between(birth_date, at_date) }} < 65 then '50-64'
        else '65+'
    end
{%- endmacro %}
