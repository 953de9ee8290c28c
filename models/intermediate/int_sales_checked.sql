{#- Indexes on the clean sales' times and customers: a kept night of int_customer_sale_windows
    reads the sales touched since the previous night, and its recomputed customers, through them;
    the sales snapshot its changed rows (updated_at), and this model's next build the clean sales
    of changed customers; the reconciliation tests the rows updated in the week (updated_at), and
    source_volumes the night's rows (updated_at, and the arrival time). -#}
{% set clean = "where quarantine_reason is null and not superseded" %}
{% set clean_sale_indexes = [] %}
{% for column in ['customer_id', 'sold_at', 'recorded_at', 'status_changed_at', 'paid_at', 'due_at', 'updated_at'] %}
    {% do clean_sale_indexes.append("{{ hook_index('clean_" ~ column ~ "', '(" ~ column ~ ") " ~ clean ~ "') }}") %}
{% endfor %}
{{
    config(
        materialized=incremental_by_key(),
        unique_key='sale_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['sale_key']}],
        pre_hook="{{ work_mem('1GB') }}",
        post_hook=[
            "{{ hook_index('clean_sale_id', '(sale_id) " ~ clean ~ "', unique=true) }}",
            "{{ hook_index('quarantined', '(quarantine_reason) where quarantine_reason is not null') }}",
            "{{ hook_index('clean_changed_at', '(clean_changed_at)') }}",
            "{{ hook_index('updated_at', '(updated_at)') }}",
            "{{ hook_index('arrived_at', '((coalesce(recorded_at, sold_at)))') }}",
        ] + clean_sale_indexes + ["{{ refresh_statistics(this) }}"],
    )
}}

{% set source_sales = source('master_data', 'sales') %}
{% set source_customers = source('master_data', 'customers') %}
-- depends_on: {{ ref('customers_snapshot') }}
{% set changed_after = changed_since_last_build(this, 'updated_at') if is_incremental() else none %}
{% set checked_at = "cast('" ~ run_started_at.isoformat() ~ "' as " ~ type_timestamptz() ~ ")" %}

-- One row per row of master_data.sales, with quarantine_reason set when it cannot be
-- used: the staging checks, plus the ones that need its customer; older versions of a
-- sale are superseded (neither clean nor quarantined). The unique index on clean sale
-- ids makes a second clean version of a sale fail the build. The full
-- build sorts every sale to rank the versions of each: hence its work_mem (on full builds only).
--
-- Incremental: each night re-checks every row of the sales that changed since the
-- last build (updated_at past the newest one seen, less a day for late commits, and
-- some row not held here as it is), of
-- the customers that changed, of the sales set aside for their customer, and the
-- rows without a clean sale id or updated_at. Rows
-- deleted from master data or inserted with an old updated_at are not seen; the
-- reconciliation test then fails and names the fix (a full refresh of this model).
--
-- clean_changed_at is when a build last gave a sale a clean row, took it away or moved
-- it to another customer (clean_customer_before: the customer it had), the full build's
-- time for every row it wrote, null for a sale clean since it first came: a kept night
-- of int_customer_sale_windows recomputes the customers of the sales changed so since
-- the night it is kept from, read through an index instead of a scan of every sale.
with

{% if is_incremental() %}

-- Customers edited or added since the last build, and those whose version the
-- snapshot closed since (edited or deleted): their sales are checked again.
changed_customers as (

    select nullif(trim(customers.customer_id), '') as customer_id
    from {{ source_customers }} as customers
    where customers.updated_at is null
        or customers.updated_at > {{ changed_after }}
    union
    select customer_id
    from {{ ref('customers_snapshot') }}
    where dbt_valid_to > {{ changed_after }}

),

-- The sales with a row updated since the last build.
updated_sales as (

    select distinct coalesce(nullif(trim(sales.sale_id), ''), '') as sale_key
    from {{ source_sales }} as sales
    where sales.updated_at > {{ changed_after }}

),

-- Those of them held here already with every row as it is (as many rows, the same
-- hashes): most are the previous night's, read again in the day kept for late commits.
-- Checking them again would change nothing (an edit of their customer is found below).
checked_as_they_are as (

    select source_rows.sale_key
    from (
        select sales.sale_id as sale_key, count(*) as row_count, sum({{ sale_row_hash('sales') }}) as hash_sum
        from {{ source_sales }} as sales
        where {{ in_subquery('sales.sale_id', "select sale_key from updated_sales where sale_key <> ''") }}
        group by sales.sale_id
    ) as source_rows
    inner join (
        select sale_key, count(*) as row_count, sum(source_row_hash) as hash_sum
        from {{ this }}
        where {{ in_subquery('sale_key', 'select sale_key from updated_sales') }}
        group by sale_key
    ) as held_rows
        on held_rows.sale_key = source_rows.sale_key
        and held_rows.row_count = source_rows.row_count
        and held_rows.hash_sum = source_rows.hash_sum

),

-- Each arm a condition an index of master data serves (contract.create_tables): the
-- rows updated since (or without updated_at) and not checked as they are, and those
-- whose id is not written as it is keyed (null, empty, with spaces), always checked again.
changed_sales as (

    select sale_key from updated_sales
    where sale_key not in (select sale_key from checked_as_they_are)
    union
    select coalesce(nullif(trim(sales.sale_id), ''), '')
    from {{ source_sales }} as sales
    where sales.updated_at is null
    union
    select coalesce(nullif(trim(sales.sale_id), ''), '')
    from {{ source_sales }} as sales
    where {{ unkeyed_sale_id('sales.sale_id') }}
    union
    select sale_key
    from {{ this }}
    where quarantine_reason in ('unknown_customer', 'sold_before_customer_existed')
    union
    -- their clean sales that the change sets aside: their customer gone, or created after
    -- them (through the index on clean customers; the rows set aside or superseded keep
    -- their state whatever their customer, or are taken just above). An edit that keeps
    -- the customer and its creation time checks none of its sales again.
    select checked.sale_key
    from {{ this }} as checked
    inner join changed_customers on changed_customers.customer_id = checked.customer_id
    left join {{ ref('int_customers_deduplicated') }} as customers
        on customers.customer_id = checked.customer_id
    where checked.quarantine_reason is null and not checked.superseded
        and (customers.customer_id is null or checked.sold_at < customers.created_at)

),

-- Every row of those sales: ids written as they are keyed, and the rows whose id is
-- not (null, empty, or with spaces), which the union above always takes.
changed_rows as (

    select * from {{ source_sales }}
    where {{ in_subquery('sale_id', "select sale_key from changed_sales where sale_key <> ''") }}
    union all
    select * from {{ source_sales }} as sales
    where {{ unkeyed_sale_id('sales.sale_id') }}

),

sales as (

    {{ stage_master_sales('changed_rows') }}

),

-- What these sales had here before: their clean row's customer, if any.
previous_checks as (

    select
        sale_key,
        max(customer_id) filter (where quarantine_reason is null and not superseded) as clean_customer_id,
        max(clean_changed_at) as clean_changed_at,
        max(clean_customer_before) as clean_customer_before
    from {{ this }}
    where {{ in_subquery('sale_key', 'select sale_key from changed_sales') }}
    group by sale_key

),

{% else %}

sales as (

    select * from {{ ref('stg_master__sales') }}

),

{% endif %}

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

checked as (

    select
        coalesce(sales.sale_id, '') as sale_key,
        sales.sale_id,
        sales.customer_id,
        sales.sold_at,
        sales.status_changed_at,
        sales.due_at,
        sales.paid_at,
        sales.recorded_at,
        sales.updated_at,
        sales.quantity,
        sales.amount,
        sales.status,
        sales.channel,
        sales.status_change_time_unknown,
        sales.source_row_hash,
        sales.superseded,
        -- payment facts, stored once: each night's features read them for every sale
        {{ days_between_times('sales.sold_at', 'sales.paid_at') }} as days_to_pay,
        {{ days_between('sales.due_at', 'sales.paid_at::date') }} as days_paid_after_due,
        coalesce(
            sales.quarantine_reason,
            case
                when sales.superseded then null
                when customers.customer_id is null then 'unknown_customer'
                when sales.sold_at < customers.created_at then 'sold_before_customer_existed'
            end
        ) as quarantine_reason
    from sales
    left join customers on customers.customer_id = sales.customer_id

),

final as (

    select
        checked.*,
        {%- if is_incremental() %}
        -- a sale new here has no clean row to lose (the snapshot sees it in this build)
        case
            when previous_checks.sale_key is null then null
            when previous_checks.clean_customer_id is distinct from clean_now.customer_id then {{ checked_at }}
            else previous_checks.clean_changed_at
        end as clean_changed_at,
        case
            when previous_checks.clean_customer_id is distinct from clean_now.customer_id
                then coalesce(previous_checks.clean_customer_id, previous_checks.clean_customer_before)
            else previous_checks.clean_customer_before
        end as clean_customer_before
    from checked
    left join previous_checks on previous_checks.sale_key = checked.sale_key
    left join (
        select sale_key, customer_id from checked
        where quarantine_reason is null and not superseded
    ) as clean_now on clean_now.sale_key = checked.sale_key
        {%- else %}
        {{ checked_at }} as clean_changed_at,
        cast(null as {{ type_text() }}) as clean_customer_before
    from checked
        {%- endif %}

)

select * from final
