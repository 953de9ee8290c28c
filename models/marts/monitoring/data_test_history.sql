{{ config(materialized='ephemeral') }}

-- One row per dbt invocation and test, or no rows before the first run stored its
-- results (Python creates the table).
{%- set results = source('monitoring', 'dbt_test_results') %}
{%- set found = load_relation(results) if execute else none %}

{% if found is not none %}

select
    run_id,
    invocation_id,
    as_of_date,
    generated_at,
    unique_id,
    test_name,
    test_kind,
    status,
    failures,
    message
from {{ results }}

{% else %}

select
    null::{{ type_text() }} as run_id,
    null::{{ type_text() }} as invocation_id,
    null::date as as_of_date,
    null::{{ type_timestamptz() }} as generated_at,
    null::{{ type_text() }} as unique_id,
    null::{{ type_text() }} as test_name,
    null::{{ type_text() }} as test_kind,
    null::{{ type_text() }} as status,
    null::bigint as failures,
    null::{{ type_text() }} as message
where false

{% endif %}
