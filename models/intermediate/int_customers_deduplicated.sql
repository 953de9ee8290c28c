-- depends_on: {{ ref('stg_master__loads') }}
-- One row per customer: the latest clean version of each master-data customer. A table,
-- as the staging it filters: the customers snapshot, int_sales_checked and the tests read it.
{{ config(materialized='table') }}
with

customers as (

    select * from {{ ref('stg_master__customers') }}

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
        -- when this version was first seen, by the run's clock, and the night that
        -- sighting counts for: the snapshot keeps both from then on
        '{{ run_started_at.isoformat() }}'::{{ type_timestamptz() }} as seen_at,
        '{{ sighting_night() }}'::date as seen_on
    from customers
    where quarantine_reason is null and not superseded

)

select * from final
