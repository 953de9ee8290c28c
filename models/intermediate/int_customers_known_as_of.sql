-- One row per (customer_id, as_of_date): the customer's attributes as known that night.
-- A customer is known at a night once the snapshot has seen it; customers seen on the
-- snapshot's first night are known since they were created (nothing older exists).
-- Before a customer's first version, that version stands in.
with

dates as (

    select * from {{ ref('int_as_of_dates') }}

),

versions as (

    select
        customer_id,
        created_at,
        country,
        segment,
        birth_date,
        gender,
        dbt_valid_from,
        dbt_valid_to,
        row_number() over (partition by customer_id order by dbt_valid_from) as version_number,
        min(seen_on) over (partition by customer_id) as first_seen_on,
        min(seen_on) over () as snapshot_start
    from {{ ref('customers_snapshot') }}

),

final as (

    select
        versions.customer_id,
        dates.as_of_date,
        versions.created_at,
        versions.country,
        versions.segment,
        versions.birth_date,
        versions.gender
    from dates
    inner join versions
        on versions.created_at < {{ known_before('dates.as_of_date') }}
        and (versions.first_seen_on <= dates.as_of_date or versions.first_seen_on = versions.snapshot_start)
        and (versions.dbt_valid_to is null or versions.dbt_valid_to >= {{ known_before('dates.as_of_date') }})
        and (versions.dbt_valid_from < {{ known_before('dates.as_of_date') }} or versions.version_number = 1)

)

select * from final
