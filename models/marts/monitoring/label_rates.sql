{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

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
        {{ quantiles('score', [0.1, 0.25, 0.5, 0.75, 0.9]) }} as score_quantiles,
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
        (bad_customers::{{ type_float() }} / customers)::{{ type_float() }} as bad_rate,
        (customers::{{ type_float() }} / sum(customers) over (partition by as_of_date))::{{ type_float() }} as share_of_night,

        ---------- score distribution
        score_mean::{{ type_float() }} as score_mean,
        {{ array_item('score_quantiles', 1) }}::{{ type_float() }} as score_p10,
        {{ array_item('score_quantiles', 2) }}::{{ type_float() }} as score_p25,
        {{ array_item('score_quantiles', 3) }}::{{ type_float() }} as score_p50,
        {{ array_item('score_quantiles', 4) }}::{{ type_float() }} as score_p75,
        {{ array_item('score_quantiles', 5) }}::{{ type_float() }} as score_p90,

        scored_at

    from by_version

)

select * from final
