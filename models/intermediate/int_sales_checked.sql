{{ config(materialized='table') }}

-- One row per row of master_data.sales, with quarantine_reason set when it cannot be
-- used: the staging checks, plus the ones that need its customer. A table: the
-- deduplication behind it sorts every sale, so it runs once per build.
with

sales as (

    select * from {{ ref('stg_master__sales') }}

),

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

final as (

    select
        sales.sale_id,
        sales.customer_id,
        sales.sold_at,
        sales.status_changed_at,
        sales.due_at,
        sales.paid_at,
        sales.recorded_at,
        sales.updated_at,
        sales.quantity,
        sales.amount,
        sales.status,
        sales.channel,
        coalesce(
            sales.quarantine_reason,
            case
                when customers.customer_id is null then 'unknown_customer'
                when sales.sold_at < customers.created_at then 'sold_before_customer_existed'
            end
        ) as quarantine_reason
    from sales
    left join customers on customers.customer_id = sales.customer_id

)

select * from final
