-- Fails when more than var max_quarantine_rate of a source table's rows are quarantined.
with

quarantined as (

    select source_table, count(*) as quarantined_rows
    from {{ ref('master_data_quarantine') }}
    group by source_table

),

totals as (

    select 'customers' as source_table, count(*) as source_rows from {{ source('master_data', 'customers') }}
    union all
    select 'sales', count(*) from {{ source('master_data', 'sales') }}

)

select
    totals.source_table,
    quarantined.quarantined_rows,
    totals.source_rows,
    quarantined.quarantined_rows::float / totals.source_rows as quarantine_rate
from totals
inner join quarantined using (source_table)
where quarantined.quarantined_rows::float / totals.source_rows > {{ var('max_quarantine_rate') }}
