-- Failing rows are stored in <target schema>_dbt_test__audit.assert_every_source_row_is_clean_or_quarantined for the operator.
{{ config(store_failures=true) }}
-- Nothing vanishes: per source table, source rows = clean rows + quarantined rows +
-- older versions of a row (superseded by a later updated_at).
-- The sales check is incremental: rows deleted from master data, or inserted with an
-- updated_at older than the last build, show here. The fix is in the `fix` column.
-- Such rows are not among the rows changed since the last build, so only a count of
-- every sale finds them for sure. That count grows with the history: it runs on
-- full-check nights (7 or more nights after the last one that passed, every
-- --full-refresh, or var full_checks: always; macros/tests/checked_since.sql), so a row
-- vanished is reported within the week, or the first night built after it. The other nights count the sales updated in the last week, through indexes on
-- updated_at (the quarantine's, a table of the rows set aside, is read whole). The
-- customers grow with the customers, not the history: counted whole every night.
{% set since = checked_since() %}
{% set recent = "updated_at >= " ~ since if since else "true" %}
{% set recently_quarantined = "cast(" ~ json_field_text('staged_row', 'updated_at') ~ " as " ~ type_timestamptz() ~ ") >= " ~ since if since else "true" %}
with

counts as (

    select 'customers' as source_table,
        (select count(*) from {{ source('master_data', 'customers') }}) as source_rows,
        (select count(*) from {{ ref('int_customers_deduplicated') }}) as clean_rows,
        (select count(*) from {{ ref('stg_master__customers') }} where superseded) as superseded_rows
    union all
    select 'sales',
        (select count(*) from {{ source('master_data', 'sales') }} where {{ recent }}),
        (select count(*) from {{ ref('int_sales_validated') }} where {{ recent }}),
        (select count(*) from {{ ref('int_sales_checked') }} where superseded and {{ recent }})

),

quarantined as (

    select source_table, count(*) as quarantined_rows
    from {{ ref('master_data_quarantine') }}
    where source_table = 'customers' or {{ recently_quarantined }}
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
