{{ config(materialized='night_by_night') }}

{% set nights = nights_to_build(ref('int_as_of_dates')) %}

-- One row per active customer per as_of_date, from what was known that night only.
-- Built one night at a time (the night_by_night materialization), with the night and
-- its windows as constants: Postgres scans the sales in parallel, compares timestamps
-- to literals, and the night's hash table holds one row per customer. A night's rows
-- are written once and never recomputed, so they stay what the scorer saw.
{% call(night) union_per_night(nights) %}
{% set as_of = "'" ~ night ~ "'::date" %}
with

customers as (

    select * from {{ ref('int_customers_known_as_of') }}
    where as_of_date = {{ as_of }}

),

sales_aggregated as (

    select
        customer_id,

        ---------- recency and frequency (a sale's age in days: as_of - its date)
        {{ as_of }} - max(sold_at)::date as days_since_last_sale,
        count(*) filter (where status <> 'cancelled' and sold_at >= {{ day_start(night, -29) }}) as sales_count_30d,
        count(*) filter (where status <> 'cancelled' and sold_at >= {{ day_start(night, -89) }}) as sales_count_90d,
        count(*) filter (
            where status <> 'cancelled' and sold_at >= {{ day_start(night, -179) }} and sold_at < {{ day_start(night, -89) }}
        ) as sales_count_prev_90d,
        count(*) filter (where status <> 'cancelled') as sales_count_365d,

        ---------- monetary value (completed sales, as known that night)
        coalesce(sum(amount) filter (where status = 'completed' and sold_at >= {{ day_start(night, -29) }}), 0)
            as revenue_30d,
        coalesce(sum(amount) filter (where status = 'completed' and sold_at >= {{ day_start(night, -89) }}), 0)
            as revenue_90d,
        coalesce(sum(amount) filter (
            where status = 'completed' and sold_at >= {{ day_start(night, -179) }} and sold_at < {{ day_start(night, -89) }}
        ), 0) as revenue_prev_90d,
        coalesce(sum(amount) filter (where status = 'completed'), 0) as revenue_365d,
        avg(amount) filter (where status <> 'cancelled') as avg_sale_amount_365d,

        ---------- returns and cancellations
        count(*) filter (where status = 'returned')::float
            / nullif(count(*) filter (where status <> 'cancelled'), 0) as return_rate_365d,
        count(*) filter (where status = 'cancelled')::float / count(*) as cancel_rate_365d,

        ---------- payments
        count(*) filter (where status = 'completed' and paid_at is null and due_at >= {{ as_of }})
            as open_invoices_count,
        count(*) filter (where status = 'completed' and paid_at is null and due_at < {{ as_of }})
            as overdue_invoices_count,
        coalesce(sum(amount) filter (where status = 'completed' and paid_at is null and due_at < {{ as_of }}), 0)
            as overdue_amount,
        count(*) filter (where status = 'completed' and paid_at is null and due_at < {{ as_of }})::float
            / nullif(count(*) filter (where status = 'completed' and due_at < {{ as_of }}), 0) as overdue_share_365d,
        count(*) filter (where days_paid_after_due > 0)::float
            / nullif(count(days_to_pay), 0) as late_payment_rate_365d,
        -- in numeric: a float sum depends on the order the rows come in, which an edit to any sale changes
        avg(days_to_pay::numeric) as avg_days_to_pay_365d,
        avg(days_to_pay::numeric) filter (where days_paid_after_due <= 0) as avg_days_to_pay_on_time_365d,
        avg(days_to_pay::numeric) filter (where sold_at >= {{ day_start(night, -119) }}) as avg_days_to_pay_120d,

        ---------- signs of leaving: recent purchases returned, recent invoices left unpaid
        count(*) filter (where status = 'returned' and sold_at >= {{ day_start(night, -89) }}) as returns_count_90d,
        count(*) filter (
            where status = 'completed' and paid_at is null
                and sold_at >= {{ day_start(night, -89) }} and sold_at < {{ day_start(night, -14) }}
        ) as unpaid_invoices_15_90d,
        count(*) filter (
            where status = 'returned' and paid_at is null and sold_at >= {{ day_start(night, -89) }}
        ) as returns_unpaid_90d,

        ---------- channel mix
        count(*) filter (where channel in ('web', 'app'))::float
            / nullif(count(channel), 0) as online_share_365d

    from ({{ sales_known_on(night, ref("int_sales_known_at")) }}) as sales
    group by customer_id

),

-- BG/NBD's summary over every purchase known that night (not only the active window),
-- counted from the first: T = days since the first purchase, t_x = T - days since the
-- last, x = the purchases after the first. Cancelled sales are not purchases.
purchase_history as (

    select
        customer_id,
        {{ as_of }} - min(sold_at)::date as days_since_first_purchase,
        {{ as_of }} - max(sold_at)::date as days_since_last_purchase,
        count(*) - 1 as repeat_purchases_count
    from {{ ref('int_sales_known_at') }}
    where {{ sale_is_known(day_start(night, 1)) }}
        and {{ sale_status_at(day_start(night, 1)) }} <> 'cancelled'
    group by customer_id

),

final as (

    select
        ---------- keys
        customers.customer_id,
        customers.as_of_date,

        ---------- features
        (customers.as_of_date - customers.created_at::date)::float as tenure_days,
        sales_aggregated.days_since_last_sale::float as days_since_last_sale,
        coalesce(sales_aggregated.sales_count_30d, 0)::float as sales_count_30d,
        coalesce(sales_aggregated.sales_count_90d, 0)::float as sales_count_90d,
        coalesce(sales_aggregated.sales_count_prev_90d, 0)::float as sales_count_prev_90d,
        coalesce(sales_aggregated.sales_count_365d, 0)::float as sales_count_365d,
        coalesce(sales_aggregated.revenue_30d, 0)::float as revenue_30d,
        coalesce(sales_aggregated.revenue_90d, 0)::float as revenue_90d,
        coalesce(sales_aggregated.revenue_365d, 0)::float as revenue_365d,
        coalesce(sales_aggregated.revenue_prev_90d, 0)::float as revenue_prev_90d,
        coalesce(
            (sales_aggregated.revenue_90d - sales_aggregated.revenue_prev_90d)
            / nullif(sales_aggregated.revenue_90d + sales_aggregated.revenue_prev_90d, 0),
            0
        )::float as revenue_trend_90d,
        sales_aggregated.avg_sale_amount_365d::float as avg_sale_amount_365d,
        sales_aggregated.return_rate_365d::float as return_rate_365d,
        sales_aggregated.cancel_rate_365d::float as cancel_rate_365d,
        coalesce(sales_aggregated.open_invoices_count, 0)::float as open_invoices_count,
        coalesce(sales_aggregated.overdue_invoices_count, 0)::float as overdue_invoices_count,
        coalesce(sales_aggregated.overdue_amount, 0)::float as overdue_amount,
        sales_aggregated.overdue_share_365d::float as overdue_share_365d,
        sales_aggregated.late_payment_rate_365d::float as late_payment_rate_365d,
        sales_aggregated.avg_days_to_pay_365d::float as avg_days_to_pay_365d,
        sales_aggregated.avg_days_to_pay_on_time_365d::float as avg_days_to_pay_on_time_365d,
        sales_aggregated.avg_days_to_pay_120d::float as avg_days_to_pay_120d,
        sales_aggregated.online_share_365d::float as online_share_365d,
        coalesce(sales_aggregated.returns_count_90d, 0)::float as returns_count_90d,
        coalesce(sales_aggregated.unpaid_invoices_15_90d, 0)::float as unpaid_invoices_15_90d,
        coalesce(sales_aggregated.returns_unpaid_90d, 0)::float as returns_unpaid_90d,
        purchase_history.days_since_first_purchase::float as days_since_first_purchase,
        purchase_history.days_since_last_purchase::float as days_since_last_purchase,
        purchase_history.repeat_purchases_count::float as repeat_purchases_count,
        coalesce(customers.segment, 'unknown') as segment,

        ---------- whether the snapshot had seen the customer's attributes by that night
        customers.history_source,

        ---------- sensitive attributes: fairness reports only, never model features
        coalesce(customers.country, 'unknown') as country,
        coalesce(customers.gender, 'unknown') as gender,
        {{ age_band('customers.birth_date', 'customers.as_of_date') }} as age_band

    from customers
    left join sales_aggregated
        on sales_aggregated.customer_id = customers.customer_id
    left join purchase_history
        on purchase_history.customer_id = customers.customer_id
    where sales_aggregated.customer_id is not null
        or customers.as_of_date - customers.created_at::date <= 90

)

select * from final
{% endcall %}
