-- One row per night and model version: the precision and recall estimated the night
-- the labels were published, beside the realized ones once the outcome window has
-- matured (null before). The errors say how far the estimate was from the truth.
with

estimates as (

    select * from {{ ref('performance_estimates') }}

),

realized as (

    select * from {{ ref('realized_performance') }}

),

final as (

    select
        ---------- keys
        estimates.as_of_date,
        estimates.model_name,
        estimates.model_version,
        realized.window_end,
        realized.as_of_date is not null as matured,

        ---------- precision of "bad"
        estimates.estimated_precision,
        realized.realized_precision,
        (estimates.estimated_precision - realized.realized_precision)::{{ type_float() }} as precision_error,

        ---------- recall of "bad"
        estimates.estimated_recall,
        realized.realized_recall,
        (estimates.estimated_recall - realized.realized_recall)::{{ type_float() }} as recall_error,

        ---------- bad rate
        estimates.expected_bad_rate,
        realized.realized_bad_rate

    from estimates
    left join realized using (as_of_date, model_name, model_version)

)

select * from final
