-- One row per sale that passed the row-level checks, with the checks that need its customer.
with

sales as (

    select * from {{ ref('stg_master__sales') }}
    where quarantine_reason is null

),

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

final as (

    select
        sales.*,
        case
            when customers.customer_id is null then 'unknown_customer'
            when sales.sold_at < customers.created_at then 'sold_before_customer_existed'
        end as customer_check
    from sales
    left join customers on customers.customer_id = sales.customer_id

)

select * from final
