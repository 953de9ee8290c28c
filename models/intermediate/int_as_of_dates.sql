{% set every = var('training_nights_every') %}
{% if every not in ('month', 'week') %}
    {{ exceptions.raise_compiler_error("var training_nights_every is '" ~ every ~ "': set it to 'month' or 'week'") }}
{% endif %}

-- One row per as-of date: the first day of each month (or each Monday, with
-- training_nights_every: week) of the history, plus tonight.
with

history as (

    select {{ period_starts(every, var("feature_history_months"), as_of_date()) }} as as_of_date

),

final as (

    select as_of_date from history
    union
    select {{ as_of_date() }}

)

select as_of_date from final
