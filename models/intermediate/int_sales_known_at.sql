-- One row per clean sale, with the time each of its facts became known: the sale
-- itself, its current status and its payment. A fact is known from its own timestamp,
-- or from the night the sales snapshot first saw it when that is later (a row that
-- arrived late, a payment recorded after the night it is dated, a status without
-- status_changed_at). Only those few sales are read from the snapshot, through its
-- partial index on late facts.
with

sales as (

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

final as (

    select
        sales.*,
        greatest(sales.sold_at, sales.recorded_at, seen_late.sale_seen_late_on::timestamptz) as sale_known_at,
        -- null for a completed sale, and for a status without timestamp the snapshot never saw
        case when sales.status <> 'completed' then
            greatest(sales.status_changed_at, seen_late.status_seen_late_on::timestamptz)
        end as status_known_at,
        case when sales.paid_at is not null then
            greatest(sales.paid_at, seen_late.paid_seen_late_on::timestamptz)
        end as paid_known_at
    from sales
    left join seen_late on seen_late.sale_id = sales.sale_id

)

select * from final
