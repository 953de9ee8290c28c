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
        gender
    from customers
    where quarantine_reason is null

)

select * from final
