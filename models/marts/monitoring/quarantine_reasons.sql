{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

-- One row per night, source table and reason: how many master-data rows were set
-- aside and their share of the table. Incremental: each night adds its rows.
with

quarantine as (

    select * from {{ ref('master_data_quarantine') }}

),

customers as (

    select * from {{ ref('stg_master__customers') }}

),

sales as (

    -- every source row, deduplication done once (the staging view sorts all sales)
    select * from {{ ref('int_sales_checked') }}

),

source_rows as (

    select 'customers' as source_table, count(*) as source_rows from customers
    union all
    select 'sales', count(*) from sales

),

by_reason as (

    select source_table, reason, count(*) as quarantined_rows
    from quarantine
    group by source_table, reason

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        by_reason.source_table,
        by_reason.reason,
        by_reason.quarantined_rows::bigint as quarantined_rows,
        (by_reason.quarantined_rows::{{ type_float() }} / nullif(source_rows.source_rows, 0))::{{ type_float() }} as share_of_source
    from by_reason
    inner join source_rows using (source_table)

)

select * from final
