{{ config(materialized='view') }}

-- One row per (customer_id, as_of_date) of customer_features: the day-one rule
-- baseline ("rule-baseline" in the model registry). A transparent points rule over
-- recency, frequency, returns and unpaid invoices; "bad" when the points reach 0.5.
-- The weights are fixed, so the reasons are listed in weight order. A view: a
-- projection of customer_features, read one night at a time through its index.
with

features as (

    select * from {{ ref('customer_features') }}

),

points as (

    select
        customer_id,
        as_of_date,

        ---------- recency: no sale in 90 days (null: none in the last year)
        case when coalesce(days_since_last_sale, 366) > 90 then 0.5 else 0 end as recency_points,

        ---------- unpaid: invoices past due and not paid
        case when overdue_invoices_count >= 1 then 0.3 else 0 end as unpaid_points,

        ---------- returns: a third or more of the year's purchases returned
        case when return_rate_365d >= 0.3 then 0.25 else 0 end as returns_points,

        ---------- late payments: half or more of the paid invoices paid late
        case when late_payment_rate_365d >= 0.5 then 0.2 else 0 end as late_points,

        ---------- frequency: few purchases in the year, or a fading last quarter
        case when sales_count_365d < 4 then 0.15 else 0 end as frequency_points,
        case when sales_count_90d * 2 < sales_count_prev_90d then 0.15 else 0 end as fading_points

    from features

),

scored as (

    select
        customer_id,
        as_of_date,
        cast(least(
            1.0,
            recency_points + unpaid_points + returns_points + late_points + frequency_points + fading_points
        ) as {{ type_float() }}) as score,
        {{ array_without_nulls([
            "case when recency_points > 0 then 'no purchase in the last 90 days' end",
            "case when unpaid_points > 0 then 'invoices unpaid past their due date' end",
            "case when returns_points > 0 then 'returned 30% or more of purchases' end",
            "case when late_points > 0 then 'paid half or more of invoices late' end",
            "case when frequency_points > 0 then 'fewer than 4 purchases in the last year' end",
            "case when fading_points > 0 then 'purchases halved against the quarter before' end",
        ]) }} as reasons
    from points

),

final as (

    select
        ---------- keys
        customer_id,
        as_of_date,

        ---------- score and label
        score,
        case when score >= 0.5 then 'bad' else 'good' end as label,

        ---------- reasons, strongest first
        {{ array_item('reasons', 1) }} as reason_1,
        {{ array_item('reasons', 2) }} as reason_2,
        {{ array_item('reasons', 3) }} as reason_3
    from scored

)

select * from final
