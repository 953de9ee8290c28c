{{ config(materialized='ephemeral') }}

-- One row per (customer_id, as_of_date) labelled by `custlabel score`, or no rows
-- before the first night: the scorer creates the history table, so a `dbt build`
-- on a fresh warehouse must not depend on it existing yet.
{%- set history = source('scoring', 'customer_label_history') %}
{%- set found = load_relation(history) if execute else none %}

{% if found is not none %}

select
    customer_id,
    as_of_date,
    label,
    score,
    model_name,
    model_version,
    scored_at
from {{ history }}

{% else %}

select
    null::{{ type_text() }} as customer_id,
    null::date as as_of_date,
    null::{{ type_text() }} as label,
    null::{{ type_float() }} as score,
    null::{{ type_text() }} as model_name,
    null::{{ type_text() }} as model_version,
    null::{{ type_timestamptz() }} as scored_at
where false

{% endif %}
