-- Failing rows are stored in <target schema>_dbt_test__audit.assert_checked_sales_match_master_data for the operator.
{{ config(store_failures=true) }}
-- The checked sales are master_data.sales as it is now: the same rows, and the same
-- checksum of their contract columns. The nightly build re-checks only rows whose
-- updated_at moved forward, so a row edited without a newer updated_at keeps its old
-- values here (and in every night built since): this test fails, and `fix` says what
-- to do.
-- What it guards against (a row deleted, inserted back-dated or edited without a newer
-- updated_at) leaves no trace among the rows changed since the last build. The row
-- counts read every row each night, keys only (an index-only scan where the tables'
-- visibility maps allow): a row deleted or inserted back-dated is reported the next
-- night. The checksum reads every column of every row, which grows with the history: it
-- covers every row on full-check nights (7 or more nights after the last one that
-- passed, every --full-refresh, or var full_checks: always; macros/tests/checked_since.sql),
-- so a row edited in place is reported within the week, or the first night built after
-- it, and the rows updated in the last week on the other nights
-- (through the indexes on updated_at of both tables).
{% set since = checked_since() %}
{% set recent = "updated_at >= " ~ since if since else "true" %}
with

source_sales as (

    select
        (select count(*) from {{ source('master_data', 'sales') }}) as source_rows,
        (
            select coalesce(sum({{ sale_row_hash('sales') }}), 0)
            from {{ source('master_data', 'sales') }} as sales
            where {{ recent }}
        ) as source_checksum

),

checked_sales as (

    select
        (select count(*) from {{ ref('int_sales_checked') }}) as checked_rows,
        (select coalesce(sum(source_row_hash), 0) from {{ ref('int_sales_checked') }} where {{ recent }}) as checked_checksum

)

select
    source_sales.*,
    checked_sales.*,
    'rows of master_data.sales were edited without a newer updated_at (or deleted, or inserted '
        || 'back-dated): have master data set updated_at on every change, then run '
        || '`custlabel dbt run --full-refresh --select int_sales_checked` and the build again' as fix
from source_sales
cross join checked_sales
where source_sales.source_rows <> checked_sales.checked_rows
    or source_sales.source_checksum <> checked_sales.checked_checksum
