{# Fails when the newest value known by the end of the night being built is more than
   max_age_days older than that night's end (or no row was known by then). #}
{% test recent_data_at_night(model, column_name, max_age_days) %}

with newest as (

    select max({{ column_name }}) as newest_value
    from {{ model }}
    where {{ column_name }} < {{ known_before(as_of_date()) }}

)

select
    newest_value,
    {{ as_of_date() }} as night,
    {{ max_age_days }} as max_age_days
from newest
where coalesce(newest_value, {{ earliest_time() }})
    < {{ known_before(as_of_date()) }} - interval '{{ max_age_days }} days'

{% endtest %}
