{{ config(materialized='incremental') }}

-- One row per night and model version: how many customers it labelled, the share
-- labelled bad, and the distribution of its scores. Incremental: nights newer than
-- the newest here, and tonight again, are added (the nightly run refreshes this
-- model after publishing); after re-scoring an older night, run it with --full-refresh.
with

history as (

    select * from {{ ref('label_history') }}
    where {{ is_new_night() }}

),

by_version as (

    select
        as_of_date,
        model_name,
        model_version,
        count(*) as customers,
        count(*) filter (where label = 'bad') as bad_customers,
        avg(score) as score_mean,
        percentile_cont(array[0.1, 0.25, 0.5, 0.75, 0.9]) within group (order by score) as score_quantiles,
        max(scored_at) as scored_at
    from history
    group by as_of_date, model_name, model_version

),

final as (

    select
        ---------- keys
        as_of_date,
        model_name,
        model_version,

        ---------- labels
        customers::bigint as customers,
        bad_customers::bigint as bad_customers,
        (bad_customers::float / customers)::float as bad_rate,
        (customers::float / sum(customers) over (partition by as_of_date))::float as share_of_night,

        ---------- score distribution
        score_mean::float as score_mean,
        score_quantiles[1]::float as score_p10,
        score_quantiles[2]::float as score_p25,
        score_quantiles[3]::float as score_p50,
        score_quantiles[4]::float as score_p75,
        score_quantiles[5]::float as score_p90,

        scored_at

    from by_version

)

select * from final
