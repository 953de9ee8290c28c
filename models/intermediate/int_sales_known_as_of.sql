-- One row per (sale, as_of_date) for the sales of the active window before each as-of
-- date, in the state they had that night: later status changes, payments and late
-- rows are invisible.
with

dates as (

    select * from {{ ref('int_as_of_dates') }}

),

final as (

    select known.*
    from dates
    cross join lateral ({{ sales_known_at('dates.as_of_date', ref('int_sales_validated')) }}) as known

)

select * from final
