{# Rows (within row_condition) where the expression is false; a null result passes, as in the hub. #}
{% macro _rows_where_false(model, expression, row_condition) %}
select *
from {{ model }}
where not ({{ expression }})
{%- if row_condition %}
    and ({{ row_condition }})
{%- endif %}
{% endmacro %}
