{{ config(materialized='incremental') }}

{% set nights = nights_to_build(ref('customer_outcomes')) %}

-- One row per (customer_id, as_of_date) with a matured label: features as known at
-- as_of_date joined to what happened after it. Incremental: new matured nights only.
with

outcomes as (

    select * from {{ ref('customer_outcomes') }}
    where as_of_date in ({{ date_literals(nights) }})

),

features as (

    select features.*
    from {{ ref('customer_features') }} as features
    where features.as_of_date in ({{ date_literals(nights) }})

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
        and outcomes.as_of_date = features.as_of_date

)

select * from final
