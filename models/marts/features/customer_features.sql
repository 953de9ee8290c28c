{{ config(materialized='night_by_night') }}

{% set nights = nights_to_build(ref('int_as_of_dates')) %}

-- One row per active customer per as_of_date, from what was known that night only.
-- Built one night at a time (the night_by_night materialization) from the night's row
-- of int_customer_sale_windows: counts, numeric sums and extremes of the customer's
-- sales as known that night, kept from night to night by what changed. The ratios and
-- averages are derived here, the sums divided once. A night's rows are written once
-- and never recomputed, so they stay what the scorer saw. BG/NBD's summary counts
-- every purchase known that night (not only the active window) from the first:
-- T = days since the first purchase, t_x = T - days since the last, x = the purchases
-- after the first. Cancelled sales are not purchases.
{% call(night) union_per_night(nights) %}
{% set as_of = "'" ~ night ~ "'::date" %}
{% set float = type_float() %}
with

customers as (

    select * from {{ ref('int_customers_known_as_of') }}
    where as_of_date = {{ as_of }}

),

sale_windows as (

    select * from {{ ref('int_customer_sale_windows') }}
    where as_of_date = {{ as_of }}

),

final as (

    select
        ---------- keys
        customers.customer_id,
        customers.as_of_date,

        ---------- features
        ({{ days_between('customers.created_at::date', 'customers.as_of_date') }})::{{ float }} as tenure_days,
        ({{ days_between('sale_windows.window_last_sold_at::date', 'customers.as_of_date') }})::{{ float }} as days_since_last_sale,
        coalesce(sale_windows.sales_count_30d, 0)::{{ float }} as sales_count_30d,
        coalesce(sale_windows.sales_count_90d, 0)::{{ float }} as sales_count_90d,
        coalesce(sale_windows.sales_count_prev_90d, 0)::{{ float }} as sales_count_prev_90d,
        coalesce(sale_windows.sales_count_365d, 0)::{{ float }} as sales_count_365d,
        coalesce(sale_windows.revenue_30d, 0)::{{ float }} as revenue_30d,
        coalesce(sale_windows.revenue_90d, 0)::{{ float }} as revenue_90d,
        coalesce(sale_windows.revenue_365d, 0)::{{ float }} as revenue_365d,
        coalesce(sale_windows.revenue_prev_90d, 0)::{{ float }} as revenue_prev_90d,
        coalesce(
            {{ decimal_ratio(
                '(sale_windows.revenue_90d - sale_windows.revenue_prev_90d)',
                'nullif(sale_windows.revenue_90d + sale_windows.revenue_prev_90d, 0)',
            ) }},
            0
        )::{{ float }} as revenue_trend_90d,
        (sale_windows.amount_sum_365d / nullif(sale_windows.amount_count_365d, 0))::{{ float }} as avg_sale_amount_365d,
        (sale_windows.returns_count_365d::{{ float }} / nullif(sale_windows.sales_count_365d, 0))::{{ float }} as return_rate_365d,
        (sale_windows.cancellations_count_365d::{{ float }} / nullif(sale_windows.window_sales, 0))::{{ float }} as cancel_rate_365d,
        coalesce(sale_windows.open_invoices_count, 0)::{{ float }} as open_invoices_count,
        coalesce(sale_windows.overdue_invoices_count, 0)::{{ float }} as overdue_invoices_count,
        coalesce(sale_windows.overdue_amount, 0)::{{ float }} as overdue_amount,
        (sale_windows.overdue_invoices_count::{{ float }} / nullif(sale_windows.due_invoices_count, 0))::{{ float }}
            as overdue_share_365d,
        (sale_windows.paid_late_count::{{ float }} / nullif(sale_windows.paid_count, 0))::{{ float }} as late_payment_rate_365d,
        -- numeric sums divided once: what avg() gives, whatever the order the sales were added in
        (sale_windows.days_to_pay_sum / nullif(sale_windows.paid_count, 0))::{{ float }} as avg_days_to_pay_365d,
        (sale_windows.days_to_pay_on_time_sum / nullif(sale_windows.paid_on_time_count, 0))::{{ float }}
            as avg_days_to_pay_on_time_365d,
        (sale_windows.days_to_pay_120d_sum / nullif(sale_windows.paid_120d_count, 0))::{{ float }} as avg_days_to_pay_120d,
        (sale_windows.online_count::{{ float }} / nullif(sale_windows.channel_count, 0))::{{ float }} as online_share_365d,
        coalesce(sale_windows.returns_count_90d, 0)::{{ float }} as returns_count_90d,
        coalesce(sale_windows.unpaid_invoices_15_90d, 0)::{{ float }} as unpaid_invoices_15_90d,
        coalesce(sale_windows.returns_unpaid_90d, 0)::{{ float }} as returns_unpaid_90d,
        ({{ days_between('sale_windows.first_purchase_at::date', 'customers.as_of_date') }})::{{ float }} as days_since_first_purchase,
        ({{ days_between('sale_windows.last_purchase_at::date', 'customers.as_of_date') }})::{{ float }} as days_since_last_purchase,
        (nullif(sale_windows.purchases, 0) - 1)::{{ float }} as repeat_purchases_count,
        coalesce(customers.segment, 'unknown') as segment,

        ---------- whether the snapshot had seen the customer's attributes by that night
        customers.history_source,

        ---------- sensitive attributes: fairness reports only, never model features
        coalesce(customers.country, 'unknown') as country,
        coalesce(customers.gender, 'unknown') as gender,
        {{ age_band('customers.birth_date', 'customers.as_of_date') }} as age_band

    from customers
    left join sale_windows
        on sale_windows.customer_id = customers.customer_id
    where sale_windows.window_sales > 0
        or {{ days_between('customers.created_at::date', 'customers.as_of_date') }} <= 90

)

select * from final
{% endcall %}
