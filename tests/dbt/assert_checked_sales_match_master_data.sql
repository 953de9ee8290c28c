-- Failing rows are stored in <target schema>_dbt_test__audit.assert_checked_sales_match_master_data for the operator.
{{ config(store_failures=true) }}
-- The checked sales are master_data.sales as it is now: the same rows, and the same
-- checksum of their contract columns. The nightly build re-checks only rows whose
-- updated_at moved forward, so a row edited without a newer updated_at keeps its old
-- values here (and in every night built since): this test fails, and `fix` says what
-- to do. It reads every row of both tables, on every build: a row deleted, inserted
-- back-dated or edited without a newer updated_at leaves no trace among the rows changed
-- since the last build, so a check of those alone would pass exactly when it should fail.
with

source_sales as (

    select count(*) as source_rows, coalesce(sum({{ sale_row_hash('sales') }}), 0) as source_checksum
    from {{ source('master_data', 'sales') }} as sales

),

checked_sales as (

    select count(*) as checked_rows, coalesce(sum(source_row_hash), 0) as checked_checksum
    from {{ ref('int_sales_checked') }}

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
