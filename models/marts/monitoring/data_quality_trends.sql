-- One row per night and source table: the share of rows quarantined and how late the
-- last load was, each beside its change from the previous night and its mean over
-- the last seven nights (the trend a single night's figure hides).
with

volumes as (

    select * from {{ ref('source_volumes') }}

),

final as (

    select
        ---------- keys
        as_of_date,
        source_table,

        ---------- quarantine
        quarantine_rate,
        (quarantine_rate - lag(quarantine_rate) over nights)::{{ type_float() }} as quarantine_rate_change,
        (avg(quarantine_rate) over last_seven)::{{ type_float() }} as quarantine_rate_7_nights,

        ---------- freshness
        hours_since_last_load,
        (hours_since_last_load - lag(hours_since_last_load) over nights)::{{ type_float() }} as freshness_lag_change,
        (avg(hours_since_last_load) over last_seven)::{{ type_float() }} as hours_since_last_load_7_nights

    from volumes
    window
        nights as (partition by source_table order by as_of_date),
        last_seven as (partition by source_table order by as_of_date rows between 6 preceding and current row)

)

select * from final
