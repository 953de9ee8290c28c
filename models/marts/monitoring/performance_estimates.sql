{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

-- One row per night and model version: precision and recall of "bad" estimated
-- from the scores alone, before any outcome is known (confidence-based performance
-- estimation, CBPE). With calibrated scores a customer labelled bad is bad with
-- probability score, so the expected precision is the mean score of the customers
-- labelled bad, and the expected recall their share of the night's summed scores.
-- Only calibrated scores give estimates: the rule baseline's points are no
-- probabilities, so its estimates are null (and no alert reads them).
-- Incremental: newer nights and tonight again (a re-run replaces it) are added.
with

history as (

    select * from {{ ref('label_history') }}
    where {{ is_new_night() }}

),

final as (

    select
        ---------- keys
        as_of_date,
        model_name,
        model_version,

        ---------- labels
        count(*)::bigint as customers,
        count(*) filter (where label = 'bad')::bigint as labelled_bad,

        ---------- expected from the scores, when they are probabilities
        case when {{ has_calibrated_scores('model_name') }} then avg(score)::{{ type_float() }} end as expected_bad_rate,
        case when {{ has_calibrated_scores('model_name') }} then
            avg(score) filter (where label = 'bad')::{{ type_float() }}
        end as estimated_precision,
        case when {{ has_calibrated_scores('model_name') }} then
            (sum(score) filter (where label = 'bad') / nullif(sum(score), 0))::{{ type_float() }}
        end as estimated_recall

    from history
    group by as_of_date, model_name, model_version

)

select * from final
