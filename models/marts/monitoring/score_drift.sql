{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

-- One row per night and model version: how far the version's scores and bad rate
-- have moved from its reference night (version_reference_nights: its first night
-- labelling most customers). Score drift is the PSI over the deciles of that night's
-- scores (sampled on large nights); label-rate drift the change in the share
-- labelled bad. Incremental: newer nights and tonight again (a re-run replaces it) are added.
with

rates as (

    select * from {{ ref('label_rates') }}

),

history as (

    select * from {{ ref('label_history') }}

),

reference_nights as (

    select * from {{ ref('version_reference_nights') }}

),

nights as (

    select rates.*, reference_nights.reference_night
    from rates
    inner join reference_nights using (model_name, model_version)
    where {{ is_new_night('rates.as_of_date') }}

),

-- the scores of each version's reference night and of the nights in scope (a
-- stable sample of large nights, in_drift_sample)
scored as (

    select history.as_of_date, history.model_name, history.model_version, history.score
    from history
    inner join rates using (as_of_date, model_name, model_version)
    inner join (
        select as_of_date, model_name, model_version from nights
        union
        select reference_night, model_name, model_version from reference_nights
    ) as wanted using (as_of_date, model_name, model_version)
    where {{ in_drift_sample('history.customer_id', 'rates.customers') }}

),

-- materialized: a few rows the bins join to, computed once (the planner cannot
-- estimate the sampled scores and would otherwise recompute them per score)
edges as {{ materialized_cte() }} (

    select
        scored.model_name,
        scored.model_version,
        {{ quantiles('scored.score', [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) }} as deciles
    from scored
    inner join reference_nights
        on scored.model_name = reference_nights.model_name
        and scored.model_version = reference_nights.model_version
        and scored.as_of_date = reference_nights.reference_night
    group by scored.model_name, scored.model_version

),

bin_counts as (

    select
        scored.as_of_date,
        scored.model_name,
        scored.model_version,
        {{ bucket_of('scored.score', 'edges.deciles') }} as bin,
        count(*) as rows_in_bin
    from scored
    inner join edges using (model_name, model_version)
    group by 1, 2, 3, 4

),

bin_shares as (

    select
        *,
        rows_in_bin::{{ type_float() }} / sum(rows_in_bin) over (partition by as_of_date, model_name, model_version) as share
    from bin_counts

),

compared as (

    -- width_bucket over nine deciles gives bins 0..9
    select
        nights.as_of_date,
        nights.model_name,
        nights.model_version,
        coalesce(night_bins.share, 0) as night_share,
        coalesce(reference_bins.share, 0) as reference_share
    from nights
    cross join {{ integers(0, 9, 'bins', 'bin') }}
    left join bin_shares as night_bins
        on night_bins.model_name = nights.model_name
        and night_bins.model_version = nights.model_version
        and night_bins.as_of_date = nights.as_of_date
        and night_bins.bin = bins.bin
    left join bin_shares as reference_bins
        on reference_bins.model_name = nights.model_name
        and reference_bins.model_version = nights.model_version
        and reference_bins.as_of_date = nights.reference_night
        and reference_bins.bin = bins.bin

),

psi as (

    select
        as_of_date,
        model_name,
        model_version,
        sum(
            (greatest(night_share, 1e-4) - greatest(reference_share, 1e-4))
            * ln(greatest(night_share, 1e-4) / greatest(reference_share, 1e-4))
        ) as score_psi
    from compared
    group by as_of_date, model_name, model_version

),

final as (

    select
        ---------- keys
        nights.as_of_date,
        nights.model_name,
        nights.model_version,
        nights.reference_night,

        ---------- score drift
        nights.customers,
        nights.score_mean,
        reference.score_mean as reference_score_mean,
        coalesce(psi.score_psi, 0)::{{ type_float() }} as score_psi,

        ---------- label-rate drift
        nights.bad_rate,
        reference.bad_rate as reference_bad_rate,
        (nights.bad_rate - reference.bad_rate)::{{ type_float() }} as bad_rate_change

    from nights
    inner join rates as reference
        on reference.model_name = nights.model_name
        and reference.model_version = nights.model_version
        and reference.as_of_date = nights.reference_night
    left join psi
        on psi.as_of_date = nights.as_of_date
        and psi.model_name = nights.model_name
        and psi.model_version = nights.model_version

)

select * from final
