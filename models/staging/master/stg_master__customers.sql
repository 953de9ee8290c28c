-- A table, not a view: ranking every customer's rows is a sort of them all, and about ten
-- reads a night (int_customers_deduplicated, the quarantine, the monitoring counts and the
-- tests) each sorted them again. No view reads it: rebuilding a table drops those.
{{ config(materialized='table') }}

with

source as (

    select
        source_rows.*,
        -- the row as it was read: two rows of one version that differ conflict
        {{ row_hash([
            'source_rows.customer_id', 'source_rows.created_at', 'source_rows.updated_at', 'source_rows.country',
            'source_rows.segment', 'source_rows.birth_date', 'source_rows.gender',
        ]) }} as source_row_hash
    from {{ source('master_data', 'customers') }} as source_rows

),

renamed as (

    select
        ---------- ids
        nullif(trim(customer_id), '') as customer_id,

        ---------- dates
        created_at,
        updated_at,

        ---------- attributes (optional: null when missing or unreadable)
        upper(nullif(trim(country), '')) as country,
        lower(nullif(trim(segment), '')) as segment,
        case
            when birth_date between '1900-01-01'::date and created_at::date then birth_date
        end as birth_date,
        upper(nullif(trim(gender), '')) as gender,

        source_row_hash

    from source

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by updated_at desc nulls last, source_row_hash
        ) as version_rank,
        -- an older version of a customer is history, neither clean nor quarantined
        coalesce(updated_at < max(updated_at) over (partition by customer_id), false) as superseded,
        min(source_row_hash) over same_version <> max(source_row_hash) over same_version as conflicting
    from renamed
    window same_version as (partition by customer_id, updated_at)

),

final as (

    select
        customer_id,
        created_at,
        updated_at,
        country,
        segment,
        birth_date,
        gender,
        superseded,
        case
            when superseded then null
            when customer_id is null or created_at is null or updated_at is null then 'missing_required'
            when conflicting then 'conflicting_customer'
            when version_rank > 1 then 'duplicate_customer'
        end as quarantine_reason
    from ranked

)

select * from final
