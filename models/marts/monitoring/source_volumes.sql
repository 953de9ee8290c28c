{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

{% set night_start = day_start(as_of_day(), 0) %}
{% set night_end = day_start(as_of_day(), 1) %}
{% set run_clock = "'" ~ run_started_at.isoformat() ~ "'::" ~ type_timestamptz() %}
{% set replay = as_of_day() < last_complete_night() %}
{% set judged_at -%}
    case
        when loads.last_loaded_at < {{ night_end }} then {{ night_end }}
        when {{ replay }} or not loads.by_load_time then loads.last_loaded_at
        else {{ run_clock }}
    end
{%- endset %}

-- One row per source table per night: rows held, rows that arrived or changed
-- that day (in CUSTLABEL_TIMEZONE), how old the newest load was when the night was
-- judged, and how many rows were quarantined. A load made after the night ended
-- covers it: tonight it is judged at the run's clock, a replay's not at all (0 h);
-- a newest load made before the night ended is judged at the night's end.
-- Incremental: each night adds its rows, a re-run of a night replaces them.
with

customers as (

    select * from {{ ref('stg_master__customers') }}

),

-- not materialized: each count of sale_volumes reads it through its own index, where a
-- CTE read three times would otherwise be written out whole first
sales as {{ not_materialized() }} (

    -- every source row, deduplication done once (the staging view sorts all sales)
    select * from {{ ref('int_sales_checked') }}

),

quarantine as (

    select * from {{ ref('master_data_quarantine') }}

),

loads as (

    select * from {{ ref('stg_master__loads') }}

),

customer_volumes as (

    select
        'customers' as source_table,
        count(*) as source_rows,
        count(*) filter (
            where created_at >= {{ night_start }} and created_at < {{ night_end }}
        ) as rows_arrived,
        count(*) filter (
            where updated_at >= {{ night_start }} and updated_at < {{ night_end }}
        ) as rows_updated
    from customers

),

-- each count its own query: the night's rows through int_sales_checked's indexes on
-- updated_at and on coalesce(recorded_at, sold_at), not a read of every sale
sale_volumes as (

    select
        'sales' as source_table,
        (select count(*) from sales) as source_rows,
        (
            select count(*) from sales
            where coalesce(recorded_at, sold_at) >= {{ as_of_date() }}
                and coalesce(recorded_at, sold_at) < {{ known_before(as_of_date()) }}
        ) as rows_arrived,
        (
            select count(*) from sales
            where updated_at >= {{ as_of_date() }} and updated_at < {{ known_before(as_of_date()) }}
        ) as rows_updated

),

volumes as (

    select * from customer_volumes
    union all
    select * from sale_volumes

),

quarantined as (

    select source_table, count(*) as quarantined_rows
    from quarantine
    group by source_table

),

final as (

    select
        ---------- keys
        {{ as_of_date() }} as as_of_date,
        volumes.source_table,

        ---------- volumes
        volumes.source_rows::bigint as source_rows,
        volumes.rows_arrived::bigint as rows_arrived,
        volumes.rows_updated::bigint as rows_updated,
        coalesce(quarantined.quarantined_rows, 0)::bigint as quarantined_rows,
        (coalesce(quarantined.quarantined_rows, 0)::{{ type_float() }} / nullif(volumes.source_rows, 0))::{{ type_float() }}
            as quarantine_rate,

        ---------- freshness: the newest load's age when the night was judged
        loads.last_loaded_at,
        ({{ hours_between_times('loads.last_loaded_at', judged_at) }})::{{ type_float() }} as hours_since_last_load

    from volumes
    left join quarantined using (source_table)
    left join loads using (source_table)

)

select * from final
