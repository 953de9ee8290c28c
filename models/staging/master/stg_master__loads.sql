-- One row per master-data table: its newest load. `loaded_at` is stamped by
-- `custlabel load`; a table without load times (a company's view with loaded_at
-- null) falls back to its newest updated_at not in the future, the newest change it holds.
with

customers as (

    select * from {{ source('master_data', 'customers') }}

),

sales as (

    select * from {{ source('master_data', 'sales') }}

),

final as (

    select
        'customers' as source_table,
        coalesce(max(loaded_at), max(updated_at) filter (where updated_at <= now())) as last_loaded_at,
        max(loaded_at) is not null as by_load_time
    from customers
    union all
    select
        'sales' as source_table,
        coalesce(max(loaded_at), max(updated_at) filter (where updated_at <= now())) as last_loaded_at,
        max(loaded_at) is not null as by_load_time
    from sales

)

select * from final
