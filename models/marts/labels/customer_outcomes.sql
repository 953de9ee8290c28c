{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'as_of_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['as_of_date', 'customer_id'], 'unique': true}],
    )
}}

-- One row per (customer_id, as_of_date) whose outcome window has matured: what
-- happened in (as_of_date, as_of_date + W], as known the night the window matured.
-- Incremental: a label is written once, when its window matures; `--full-refresh`
-- recomputes every label from what is known tonight.
--
-- The business rule, owned by the business owner: a customer is "bad" at T when,
-- in the window, they bring no net paid revenue (churned, or everything returned or
-- cancelled) or leave an invoice unpaid past its due date.
with

customers as (

    select customer_id, as_of_date from {{ ref('customer_features') }}
    where as_of_date + {{ var('outcome_window_days') }} <= {{ as_of_date() }}
    {% if is_incremental() %}
        and as_of_date not in (select distinct as_of_date from {{ this }})
    {% endif %}

),

sales as (

    select
        customer_id,
        sold_at,
        due_at,
        amount,
        {{ sale_status_at(known_before(as_of_date())) }} as status,
        {{ sale_paid_at(known_before(as_of_date())) }} as paid_at
    from {{ ref('int_sales_validated') }}
    where {{ sale_is_known(known_before(as_of_date())) }}

),

windows as (

    select
        customer_id,
        as_of_date,
        {{ known_before('as_of_date') }} as window_start,
        {{ known_before('as_of_date + ' ~ var('outcome_window_days')) }} as window_end_at,
        as_of_date + {{ var('outcome_window_days') }} as window_end
    from customers

),

outcomes as (

    select
        windows.customer_id,
        windows.as_of_date,
        windows.window_end,
        coalesce(sum(sales.amount) filter (
            where sales.sold_at >= windows.window_start
                and sales.status = 'completed'
                and sales.paid_at < windows.window_end_at
        ), 0) as net_paid_revenue,
        count(sales.customer_id) filter (
            where sales.status = 'completed'
                and sales.due_at > windows.as_of_date
                and sales.due_at <= windows.window_end
                and (sales.paid_at is null or sales.paid_at >= windows.window_end_at)
        ) as unpaid_invoices_count
    from windows
    left join sales
        on sales.customer_id = windows.customer_id
        and sales.sold_at < windows.window_end_at
        and sales.sold_at >= windows.window_start - interval '{{ var("active_window_days") }} days'
    group by windows.customer_id, windows.as_of_date, windows.window_end

),

final as (

    select
        customer_id,
        as_of_date,
        window_end,
        net_paid_revenue::float as net_paid_revenue,
        unpaid_invoices_count::integer as unpaid_invoices_count,
        (net_paid_revenue <= 0 or unpaid_invoices_count > 0)::integer as is_bad
    from outcomes

)

select * from final
