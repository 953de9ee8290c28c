-- One row per master-data row that was set aside, with the reason. Nothing is
-- dropped silently: every source row is either clean downstream or here.
with

customers as (

    select * from {{ ref('stg_master__customers') }}
    where quarantine_reason is not null

),

sales as (

    select * from {{ ref('stg_master__sales') }}
    where quarantine_reason is not null

),

sales_without_customer as (

    select * from {{ ref('int_sales_checked') }}
    where customer_check is not null

),

final as (

    select 'customers' as source_table, customer_id as record_id, quarantine_reason as reason, source_row
    from customers
    union all
    select 'sales', sale_id, quarantine_reason, source_row
    from sales
    union all
    select 'sales', sale_id, customer_check, source_row
    from sales_without_customer

)

select
    source_table,
    record_id,
    reason,
    source_row,
    {{ as_of_date() }} as as_of_date
from final
