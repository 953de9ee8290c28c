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
    null::text as run_id,
    null::text as invocation_id,
    null::date as as_of_date,
    null::timestamptz as generated_at,
    null::text as unique_id,
    null::text as test_name,
    null::text as test_kind,
    null::text as status,
    null::bigint as failures,
    null::text as message
where false

{% endif %}
