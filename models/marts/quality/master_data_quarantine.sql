-- One row per master-data row that was set aside, with the reason and the row as
-- staged. Nothing is dropped silently: every source row is clean downstream, here, or
-- an older version of its row (superseded, which is history, not a problem).
with

customers as (

    select * from {{ ref('stg_master__customers') }}
    where quarantine_reason is not null

),

sales as (

    select * from {{ ref('int_sales_checked') }}
    where quarantine_reason is not null

),

final as (

    select
        'customers' as source_table,
        customer_id as record_id,
        quarantine_reason as reason,
        {{ row_as_json('customers', ref('stg_master__customers'), ['quarantine_reason', 'superseded']) }} as staged_row
    from customers
    union all
    select
        'sales',
        sale_id,
        quarantine_reason,
        {{ row_as_json('sales', ref('int_sales_checked'), [
            'quarantine_reason', 'sale_key', 'source_row_hash', 'superseded', 'clean_changed_at', 'clean_customer_before',
        ]) }}
    from sales

)

select
    source_table,
    record_id,
    reason,
    staged_row,
    {{ as_of_date() }} as as_of_date
from final
