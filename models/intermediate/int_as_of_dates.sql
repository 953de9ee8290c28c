-- One row per as-of date: the first day of each month of the history, plus tonight.
with

monthly as (

    select generate_series(
        date_trunc('month', {{ as_of_date() }} - interval '{{ var("feature_history_months") }} months'),
        {{ as_of_date() }}::timestamp,
        interval '1 month'
    )::date as as_of_date

),

final as (

    select as_of_date from monthly
    union
    select {{ as_of_date() }}

)

select as_of_date from final
