-- One row per customer: the latest clean version of each master-data customer.
with

customers as (

    select * from {{ ref('stg_master__customers') }}

),

final as (

    select
        customer_id,
        created_at,
        updated_at,
        country,
        segment,
        birth_date,
        gender,
        -- the night this version was first seen: the snapshot keeps it from then on
        {{ as_of_date() }} as seen_on
    from customers
    where quarantine_reason is null and not superseded

)

select * from final
