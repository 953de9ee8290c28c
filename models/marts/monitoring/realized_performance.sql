{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

{% set nights = nights_to_build(ref('customer_outcomes')) | select('in', labelled_nights()) | list %}

-- One row per night and model version whose outcome window has matured: the
-- labels published that night met with what the customers really did in
-- (as_of_date, as_of_date + W]. Precision of "bad" is the agreed measure.
-- Incremental: a build adds the matured nights it does not hold yet that have labels,
-- whatever their order (a past night scored late is added too), and reads only those
-- nights' labels and outcomes. After re-scoring a night it holds, run it with --full-refresh.
with

history as (

    select * from {{ ref('label_history') }}
    where {{ is_night_in(nights) }}

),

outcomes as (

    select * from {{ ref('customer_outcomes') }}
    where {{ is_night_in(nights) }}

),

matured_nights as (

    select distinct as_of_date, window_end from outcomes

),

labelled as (

    select
        history.as_of_date,
        matured_nights.window_end,
        history.model_name,
        history.model_version,
        history.label,
        outcomes.is_bad
    from history
    inner join matured_nights using (as_of_date)
    left join outcomes using (customer_id, as_of_date)

),

confusion as (

    select
        as_of_date,
        window_end,
        model_name,
        model_version,
        count(*) as customers_labelled,
        count(is_bad) as customers_with_outcome,
        count(*) filter (where label = 'bad' and is_bad = 1) as true_positives,
        count(*) filter (where label = 'bad' and is_bad = 0) as false_positives,
        count(*) filter (where label = 'good' and is_bad = 1) as false_negatives,
        count(*) filter (where label = 'good' and is_bad = 0) as true_negatives
    from labelled
    group by as_of_date, window_end, model_name, model_version

),

final as (

    select
        ---------- keys
        as_of_date,
        window_end,
        model_name,
        model_version,

        ---------- coverage
        customers_labelled::bigint as customers_labelled,
        customers_with_outcome::bigint as customers_with_outcome,

        ---------- confusion matrix of "bad"
        true_positives::bigint as true_positives,
        false_positives::bigint as false_positives,
        false_negatives::bigint as false_negatives,
        true_negatives::bigint as true_negatives,

        ---------- realized figures
        (true_positives::{{ type_float() }} / nullif(true_positives + false_positives, 0))::{{ type_float() }} as realized_precision,
        (true_positives::{{ type_float() }} / nullif(true_positives + false_negatives, 0))::{{ type_float() }} as realized_recall,
        ((true_positives + false_positives)::{{ type_float() }} / nullif(customers_with_outcome, 0))::{{ type_float() }}
            as predicted_bad_rate,
        ((true_positives + false_negatives)::{{ type_float() }} / nullif(customers_with_outcome, 0))::{{ type_float() }}
            as realized_bad_rate

    from confusion

)

select * from final
