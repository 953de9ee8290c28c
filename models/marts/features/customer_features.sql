{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'as_of_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['as_of_date', 'customer_id'], 'unique': true}],
    )
}}

{% set built_nights = built_as_of_dates(this) if is_incremental() else none %}

-- One row per active customer per as_of_date, from what was known that night only.
-- Incremental: a night's rows are written once and never recomputed, so they stay
-- what the scorer saw.
with

customers as (

    select * from {{ ref('int_customers_known_as_of') }}
    {% if is_incremental() %}
    where as_of_date not in ({{ built_nights }})
    {% endif %}

),

sales as (

    select * from {{ ref('int_sales_known_as_of') }}
    {% if is_incremental() %}
    where as_of_date not in ({{ built_nights }})
    {% endif %}

),

nights as (

    select distinct as_of_date from customers

),

-- One aggregation per night (a lateral join): each night's hash table holds one
-- row per customer and stays in memory, where grouping all nights at once spills.
sales_aggregated as (

    select
        nights.as_of_date,
        per_night.*
    from nights
    cross join lateral (

        select
            customer_id,

            ---------- recency and frequency
            min(age_days) as days_since_last_sale,
            count(*) filter (where status <> 'cancelled' and age_days < 30) as sales_count_30d,
            count(*) filter (where status <> 'cancelled' and age_days < 90) as sales_count_90d,
            count(*) filter (where status <> 'cancelled' and age_days between 90 and 179) as sales_count_prev_90d,
            count(*) filter (where status <> 'cancelled') as sales_count_365d,

            ---------- monetary value (completed sales, as known that night)
            coalesce(sum(amount) filter (where status = 'completed' and age_days < 30), 0) as revenue_30d,
            coalesce(sum(amount) filter (where status = 'completed' and age_days < 90), 0) as revenue_90d,
            coalesce(sum(amount) filter (where status = 'completed' and age_days between 90 and 179), 0)
                as revenue_prev_90d,
            coalesce(sum(amount) filter (where status = 'completed'), 0) as revenue_365d,
            avg(amount) filter (where status <> 'cancelled') as avg_sale_amount_365d,

            ---------- returns and cancellations
            count(*) filter (where status = 'returned')::float
                / nullif(count(*) filter (where status <> 'cancelled'), 0) as return_rate_365d,
            count(*) filter (where status = 'cancelled')::float / count(*) as cancel_rate_365d,

            ---------- payments
            count(*) filter (where status = 'completed' and paid_at is null and due_at >= as_of_date)
                as open_invoices_count,
            count(*) filter (where status = 'completed' and paid_at is null and due_at < as_of_date)
                as overdue_invoices_count,
            coalesce(sum(amount) filter (where status = 'completed' and paid_at is null and due_at < as_of_date), 0)
                as overdue_amount,
            count(*) filter (where status = 'completed' and paid_at is null and due_at < as_of_date)::float
                / nullif(count(*) filter (where status = 'completed' and due_at < as_of_date), 0) as overdue_share_365d,
            count(*) filter (where paid_at::date > due_at)::float
                / nullif(count(*) filter (where paid_at is not null), 0) as late_payment_rate_365d,
            avg(extract(epoch from paid_at - sold_at) / 86400.0) as avg_days_to_pay_365d,

            ---------- channel mix
            count(*) filter (where channel in ('web', 'app'))::float
                / nullif(count(channel), 0) as online_share_365d

        from sales
        where sales.as_of_date = nights.as_of_date
        group by customer_id

    ) as per_night

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
        sales_aggregated.online_share_365d::float as online_share_365d,
        coalesce(customers.segment, 'unknown') as segment,

        ---------- sensitive attributes: fairness reports only, never model features
        coalesce(customers.country, 'unknown') as country,
        coalesce(customers.gender, 'unknown') as gender,
        {{ age_band('customers.birth_date', 'customers.as_of_date') }} as age_band

    from customers
    left join sales_aggregated
        on sales_aggregated.customer_id = customers.customer_id
        and sales_aggregated.as_of_date = customers.as_of_date
    where sales_aggregated.customer_id is not null
        or customers.as_of_date - customers.created_at::date <= 90

)

select * from final
