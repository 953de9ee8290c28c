-- One row per (customer_id, as_of_date): the customer's attributes as known that night.
-- A customer is in a night's history once created (customers seen on the snapshot's
-- first night are known since they were created: nothing older exists; later ones
-- from the night the snapshot first saw them) until deleted. Its attributes carry no
-- timestamp of their own, so a night sees the newest version the snapshot had seen by
-- then, and the night is 'observed'. Before the snapshot saw any version of the
-- customer, the night is 'reconstructed': its attributes are assumed to be those of the
-- earliest version known (segments change rarely; 'unknown' there would teach the
-- model a segment real nights never have), the rest comes from event times only.
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
        dbt_scd_id,
        -- the first night this version was seen, and as the newest known version
        greatest(seen_on, dbt_valid_from::date) as known_from,
        row_number() over (partition by customer_id order by dbt_valid_from desc, dbt_scd_id) as newest_first,
        row_number() over (partition by customer_id order by dbt_valid_from, dbt_scd_id) as oldest_first,
        min(seen_on) over (partition by customer_id) as first_seen_on,
        min(seen_on) over () as snapshot_start
    from {{ ref('customers_snapshot') }}

),

known_versions as (

    select
        *,
        lead(known_from) over (partition by customer_id order by dbt_valid_from, dbt_scd_id) as known_until
    from versions

),

-- One row per customer: its earliest version, assumed on the nights before it was seen.
earliest_versions as (

    select customer_id, country, segment, birth_date, gender
    from versions
    where oldest_first = 1

),

-- One row per customer: when it enters the history and when it left master data.
customers as (

    select
        customer_id,
        created_at,
        dbt_valid_to as deleted_at,
        case when first_seen_on = snapshot_start then created_at::date else first_seen_on end as in_history_from
    from versions
    where newest_first = 1

),

final as (

    select
        customers.customer_id,
        dates.as_of_date,
        customers.created_at,
        {%- for attribute in ['country', 'segment', 'birth_date', 'gender'] %}
        case when known_versions.customer_id is null then earliest_versions.{{ attribute }}
            else known_versions.{{ attribute }} end as {{ attribute }},
        {%- endfor %}
        case when known_versions.customer_id is null then 'reconstructed' else 'observed' end as history_source
    from dates
    inner join customers
        on customers.created_at < {{ known_before('dates.as_of_date') }}
        and customers.in_history_from <= dates.as_of_date
        and (customers.deleted_at is null or customers.deleted_at >= {{ known_before('dates.as_of_date') }})
    left join known_versions
        on known_versions.customer_id = customers.customer_id
        and known_versions.known_from <= dates.as_of_date
        and (known_versions.known_until is null or known_versions.known_until > dates.as_of_date)
    inner join earliest_versions
        on earliest_versions.customer_id = customers.customer_id

)

select * from final
