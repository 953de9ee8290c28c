-- One row per (sale, as_of_date) for the sales of the active window before each as-of
-- date, in the state they had that night: later status changes, payments and late
-- rows are invisible.
with

dates as (

    select * from {{ ref('int_as_of_dates') }}

),

sales as (

    select * from {{ ref('int_sales_validated') }}

),

known as (

    select
        dates.as_of_date,
        sales.*
    from dates
    inner join sales
        on sales.sold_at >= {{ known_before('dates.as_of_date') }} - interval '{{ var("active_window_days") }} days'
        and {{ sale_is_known(known_before('dates.as_of_date')) }}

),

final as (

    select
        ---------- ids
        customer_id,
        as_of_date,
        sale_id,

        ---------- state at as_of_date
        {{ sale_status_at(known_before('as_of_date')) }} as status,
        {{ sale_paid_at(known_before('as_of_date')) }} as paid_at,

        ---------- facts fixed at the sale
        sold_at,
        as_of_date - sold_at::date as age_days,
        due_at,
        amount::float as amount,
        channel
    from known

)

select * from final
