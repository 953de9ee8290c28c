-- Failing rows are stored in <target schema>_dbt_test__audit.assert_quarantine_rate_within_bound for the operator.
{{ config(store_failures=true) }}
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
    quarantined.quarantined_rows::{{ type_float() }} / totals.source_rows as quarantine_rate,
    'Correct the rows in master data (each row and its reason: analytics.master_data_quarantine), or raise '
        || 'var max_quarantine_rate (' || {{ var('max_quarantine_rate') }} || ') if this share is expected' as fix
from totals
inner join quarantined using (source_table)
where quarantined.quarantined_rows::{{ type_float() }} / totals.source_rows > {{ var('max_quarantine_rate') }}
