{{ config(materialized='ephemeral') }}

-- One row per model version: the night its drift is measured from. That is the
-- first night it labelled most of the night's customers; a canary's slice is too
-- small and partial a sample to stand for the population it will label. Until a
-- version labels most customers, its first night.
with

rates as (

    select * from {{ ref('label_rates') }}

)

select
    model_name,
    model_version,
    coalesce(min(as_of_date) filter (where share_of_night >= 0.5), min(as_of_date)) as reference_night
from rates
group by model_name, model_version
