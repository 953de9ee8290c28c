with

source as (

    select * from {{ source('master_data', 'customers') }}

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
        upper(nullif(trim(gender), '')) as gender

    from source

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by updated_at desc nulls last
        ) as version_rank
    from renamed

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
        case
            when customer_id is null or created_at is null or updated_at is null then 'missing_required'
            when version_rank > 1 then 'duplicate_customer'
        end as quarantine_reason
    from ranked

)

select * from final
