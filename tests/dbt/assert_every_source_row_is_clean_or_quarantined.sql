-- Failing rows are stored in <target schema>_dbt_test__audit.assert_every_source_row_is_clean_or_quarantined for the operator.
{{ config(store_failures=true) }}
-- Nothing vanishes: per source table, source rows = clean rows + quarantined rows +
-- older versions of a row (superseded by a later updated_at).
-- The sales check is incremental: rows deleted from master data, or inserted with an
-- updated_at older than the last build, show here. The fix is in the `fix` column.
-- It counts every row on every build: such rows are not among the rows changed since
-- the last build, which is why they go unseen there.
with

counts as (

    select 'customers' as source_table,
        (select count(*) from {{ source('master_data', 'customers') }}) as source_rows,
        (select count(*) from {{ ref('int_customers_deduplicated') }}) as clean_rows,
        (select count(*) from {{ ref('stg_master__customers') }} where superseded) as superseded_rows
    union all
    select 'sales',
        (select count(*) from {{ source('master_data', 'sales') }}),
        (select count(*) from {{ ref('int_sales_validated') }}),
        (select count(*) from {{ ref('int_sales_checked') }} where superseded)

),

quarantined as (

    select source_table, count(*) as quarantined_rows
    from {{ ref('master_data_quarantine') }}
    group by source_table

)

select
    counts.*,
    coalesce(quarantined.quarantined_rows, 0) as quarantined_rows,
    'rows were deleted or back-dated in master data: run '
        || '`custlabel dbt run --full-refresh --select int_sales_checked`, then the build again' as fix
from counts
left join quarantined using (source_table)
where counts.source_rows <> counts.clean_rows + counts.superseded_rows + coalesce(quarantined.quarantined_rows, 0)
