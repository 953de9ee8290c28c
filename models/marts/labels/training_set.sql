{{ config(materialized='night_by_night') }}

{% set nights = nights_to_build(ref('customer_outcomes')) %}

-- One row per (customer_id, as_of_date) with a matured label: features as known at
-- as_of_date joined to what happened after it. New matured nights only, one at a time.
{% call(night) union_per_night(nights) %}
with

outcomes as (

    select * from {{ ref('customer_outcomes') }}
    where as_of_date = '{{ night }}'::date

),

features as (

    select * from {{ ref('customer_features') }}
    where as_of_date = '{{ night }}'::date

),

final as (

    select
        features.*,
        outcomes.window_end,
        outcomes.net_paid_revenue,
        outcomes.unpaid_invoices_count,
        outcomes.is_bad
    from features
    inner join outcomes
        on outcomes.customer_id = features.customer_id

)

select * from final
{% endcall %}
