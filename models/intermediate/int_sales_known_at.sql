-- One row per version of each clean sale known on some night, with the time each of
-- its facts became known: the sale itself, its status and its payment, and the cutoffs
-- between which the version was the one known (version_known_from and _until; null:
-- no bound). A sale never edited has one row, its current one, for every night; an
-- edited sale has one per version (int_sales_versioned), so a night reads the amount,
-- due date, channel, customer and sale time it knew, never a later edit. A fact is
-- known from its own timestamp, or from the night the sales snapshot first saw it when
-- that is later (a row that arrived late, a payment recorded after the night it is
-- dated, a status without status_changed_at). Only those few current rows are read from
-- the snapshot, through its partial index on late facts. Read it through sale_is_known.
{% set sale_columns = [
    'sale_id', 'customer_id', 'sold_at', 'status_changed_at', 'due_at', 'paid_at', 'recorded_at', 'updated_at',
    'quantity', 'amount', 'status', 'channel', 'status_change_time_unknown', 'days_to_pay', 'days_paid_after_due',
] %}

-- The import CTEs are read twice each: not materialized, so that Postgres scans the sales
-- where it needs them (in parallel, with the reader's filters) instead of copying them
-- all first (2.3 times faster for a night of int_customer_sale_windows at 20,000 customers).
with

sales as {{ not_materialized() }} (

    select * from {{ ref('int_sales_validated') }}

),

seen_late as (

    select
        sale_id,
        sale_seen_late_on,
        paid_seen_late_on,
        status_seen_late_on
    from {{ ref('sales_snapshot') }}
    where dbt_valid_to is null
        and (sale_seen_late_on is not null or paid_seen_late_on is not null or status_seen_late_on is not null)

),

versions as {{ not_materialized() }} (

    select * from {{ ref('int_sales_versioned') }}

),

current_versions as (

    select
        {%- for column in sale_columns %}
        sales.{{ column }},
        {%- endfor %}
        seen_late.sale_seen_late_on,
        seen_late.paid_seen_late_on,
        seen_late.status_seen_late_on,
        current_version.version_known_from,
        null::{{ type_timestamptz() }} as version_known_until
    from sales
    left join seen_late on seen_late.sale_id = sales.sale_id
    left join versions as current_version
        on current_version.sale_id = sales.sale_id
        and current_version.version_known_until is null

),

earlier_versions as (

    select
        {%- for column in sale_columns %}
        {{ column }},
        {%- endfor %}
        sale_seen_late_on,
        paid_seen_late_on,
        status_seen_late_on,
        version_known_from,
        version_known_until
    -- int_sales_versioned holds only sales still clean
    from versions
    where version_known_until is not null

),

final as (

    select
        *,
        greatest(sold_at, recorded_at, sale_seen_late_on::{{ type_timestamptz() }}) as sale_known_at,
        -- null for a completed sale, and for a status without timestamp the snapshot never saw
        case when status <> 'completed' then
            greatest(status_changed_at, status_seen_late_on::{{ type_timestamptz() }})
        end as status_known_at,
        case when paid_at is not null then
            greatest(paid_at, paid_seen_late_on::{{ type_timestamptz() }})
        end as paid_known_at
    from (
        select * from current_versions
        union all
        select * from earlier_versions
    ) as known_versions

)

select * from final
