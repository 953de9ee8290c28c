{{
    config(
        materialized='night_by_night',
        indexes=[{'columns': ['as_of_date', 'customer_id'], 'unique': True}],
        pre_hook="{{ work_mem('1GB') }}",
    )
}}

-- depends_on: {{ ref('int_sales_checked') }}, {{ ref('sales_snapshot') }}, {{ ref('int_sales_versioned') }}
{% set nights = nights_to_build(ref('int_as_of_dates')) %}
{% set sales = ref('int_sales_known_at') %}

-- One row per customer with a sale known at the as_of_date: the counts, numeric sums
-- and extremes (sale_window_parts) every feature of customer_features is derived from.
-- A night is kept from the previous night held (at most 62 days before it): that
-- night's state, plus tonight's part less the previous night's part of each sale
-- touched between them (sale_touched_between); customers with nothing touched carry
-- their state. Customers whose state cannot be kept that way are computed again from
-- all their sales: a sale known at the previous night and no longer, a new version of
-- it with another customer or sale time, a purchase cancelled since (the last sale of
-- the window, the first or last purchase may move back), a sale whose clean row appeared,
-- went or moved since the previous night was built (int_sales_checked's clean_changed_at:
-- set aside, or quarantined), a sale first seen late since, and, after a full rebuild of
-- int_sales_checked (deleted sales leave no row), every customer whose count or checksum
-- of the sales known at the previous night differs from what it holds. Without a previous
-- night (a first or full build, or a gap), the night is computed in full. The same on
-- Spark with the var spark_nights: kept (by default Spark computes every night in full:
-- int_sales_checked is built in full there every night, so each kept night compares
-- every customer's known sales with the night it is kept from, measured slower).
{% call(night) union_per_night(nights) %}
{% set previous = previous_night_held(nights, night) %}
{% set parts = sale_window_parts(night) %}
{% if not previous %}
with

final as (

    {{ sale_window_state(night, sales) }}

)
{% else %}
{% set before = day_start(previous, 1) %}
{% set now = day_start(night, 1) %}
with

held as (

    select * from {{ this }}
    where as_of_date = '{{ previous }}'::date

),

touched as (

    select
        *,
        {{ sale_is_known(before) }} as known_before,
        {{ sale_is_known(before) }} and {{ sale_status_at(before) }} <> 'cancelled' as purchase_before,
        {{ sale_is_known(now) }} as known_now,
        {{ sale_is_known(now) }} and {{ sale_status_at(now) }} <> 'cancelled' as purchase_now
    from {{ sales }}
    where {{ in_subquery('sale_id', sales_maybe_touched_between(previous, night)) }}
        and {{ sale_touched_between(previous, night) }}

),

-- The sales whose clean row appeared, went (set aside, or deleted and int_sales_checked
-- rebuilt) or moved to another customer since the previous night was built: the customers
-- they had, in int_sales_checked and in any version the snapshot holds, are computed again.
previous_build as (

    select max(built_at) as built_at from held

),

-- int_sales_checked rebuilt in full since the previous night was built (its rows all
-- checked since): a sale deleted from master data has left no row. Then, instead of the
-- sales changed since, the count and checksum of each customer's sales known at the
-- previous night, as read now, are compared with what that night holds (a scan of every
-- sale, on such nights only).
checked_in_full_since_previous as (

    select min(clean_changed_at) > (select built_at from previous_build) as since_previous
    from {{ ref('int_sales_checked') }}

),

sales_rechecked as (

    select sale_id, customer_id, clean_customer_before
    from {{ ref('int_sales_checked') }}
    where clean_changed_at > (select built_at from previous_build)
        and not (select since_previous from checked_in_full_since_previous)

),

customers_rechecked as (

    select customer_id from sales_rechecked where customer_id is not null
    union
    select clean_customer_before from sales_rechecked where clean_customer_before is not null
    union
    -- each through the snapshot's partial index on its current or its closed versions
    select customer_id from {{ ref('sales_snapshot') }}
    where dbt_valid_to is null
        and {{ in_subquery('sale_id', 'select sale_id from sales_rechecked where sale_id is not null') }}
    union
    select customer_id from {{ ref('sales_snapshot') }}
    where dbt_valid_to is not null
        and {{ in_subquery('sale_id', 'select sale_id from sales_rechecked where sale_id is not null') }}

),

customers_with_sales_gone as (

    select coalesce(known.customer_id, held.customer_id) as customer_id
    from (
        select
            customer_id,
            count(*) as known_sales,
            coalesce(sum({{ text_hash('sale_id') }}), 0) as known_sales_checksum
        from {{ sales }}
        where {{ sale_is_known(before) }}
        group by customer_id
    ) as known
    full join held on held.customer_id = known.customer_id
    where (select since_previous from checked_in_full_since_previous)
        and (known.known_sales is distinct from held.known_sales
            or known.known_sales_checksum is distinct from held.known_sales_checksum)

),

-- Each touched sale at both nights (a new version of it replaces the old one between them).
touched_sales as (

    select
        sale_id,
        bool_or(known_before) as known_before,
        bool_or(known_now) as known_now,
        bool_or(purchase_before) as purchase_before,
        bool_or(purchase_now) as purchase_now,
        min(customer_id) filter (where known_before) as customer_before,
        min(customer_id) filter (where known_now) as customer_now,
        min(sold_at) filter (where known_before) as sold_before,
        min(sold_at) filter (where known_now) as sold_now
    from touched
    group by sale_id

),

-- A sale no longer known, a purchase no longer one, or a version with another customer or
-- sale time: the extremes of its customers may move back.
removals as (

    select * from touched_sales
    where (known_before and not known_now)
        or (purchase_before and not purchase_now)
        or (known_before and known_now
            and (customer_before <> customer_now or sold_before <> sold_now))

),

recomputed_customers as (

    select customer_before as customer_id from removals where customer_before is not null
    union
    select customer_now from removals where customer_now is not null
    union
    select customer_id from customers_rechecked
    union
    select customer_id from customers_with_sales_gone
    union
    -- first seen by the snapshot since, with facts older than the sighting: a sale clean
    -- before the snapshot saw it (its customer created late) may be held by the previous night
    select customer_id from touched
    where sale_seen_late_on is not null and known_now and not known_before

),

recomputed as (

    {{ sale_window_state(night, "(select * from " ~ sales ~ " where "
        ~ in_subquery('customer_id', 'select customer_id from recomputed_customers') ~ ")") }}

),

{%- set held_tonight -%}
    select
        customer_id,
        {%- for name, aggregate, combine in parts %}
        {%- if name == 'window_last_sold_at' %}
        case when {{ name }} >= {{ day_start(night, 1 - var('active_window_days')) }} then {{ name }} end as {{ name }}
        {%- else %}
        {{ name }}
        {%- endif %}{{ ',' if not loop.last }}
        {%- endfor %}
    from held
{%- endset %}

-- The customers of a touched sale (in any version) or computed again: the others carry
-- the previous night's state as it is.
changed_customers as (

    select customer_id from touched
    union
    select customer_id from recomputed_customers

),

-- The previous night's state less the previous night's part of the touched sales, plus
-- tonight's: the window's last sale carries over while it is still in the window.
changes as (

    {{ held_tonight }}
    where customer_id in (select customer_id from touched)
    union all
    {{ sale_window_state(night, 'touched') }}
    union all
    select
        customer_id,
        {%- for name, aggregate, combine in parts %}
        {%- if combine == 'sum' %}
        -{{ name }}
        {%- else %}
        null
        {%- endif %} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from ({{ sale_window_state(previous, 'touched') }}) as previous_parts

),

advanced as (

    select
        customer_id,
        {%- for name, aggregate, combine in parts %}
        {{ combine }}({{ name }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from changes
    where not exists (
        select 1 from recomputed_customers where recomputed_customers.customer_id = changes.customer_id
    )
    group by customer_id
    having sum(known_sales) > 0

),

carried as (

    {{ held_tonight }}
    where not exists (
        select 1 from changed_customers where changed_customers.customer_id = held.customer_id
    )

),

final as (

    select * from carried
    union all
    select * from advanced
    union all
    select * from recomputed

)
{% endif %}

select
    customer_id,
    '{{ night }}'::date as as_of_date,
    {%- for name, aggregate, combine in parts %}
    {{ name }},
    {%- endfor %}
    cast('{{ run_started_at.isoformat() }}' as {{ type_timestamptz() }}) as built_at
from final
{% endcall %}
