{{ config(materialized='ephemeral') }}

-- One row per model version, feature and bin of the reference distributions, or no
-- rows before the first version stored one (Python creates the table).
{%- set reference = source('monitoring', 'model_reference_bins') %}
{%- set found = load_relation(reference) if execute else none %}

{% if found is not none %}

select
    model_name,
    model_version,
    feature,
    kind,
    bin,
    lower_edge,
    upper_edge,
    category,
    reference_rows,
    reference_share
from {{ reference }}

{% else %}

select
    null::text as model_name,
    null::text as model_version,
    null::text as feature,
    null::text as kind,
    null::integer as bin,
    null::double precision as lower_edge,
    null::double precision as upper_edge,
    null::text as category,
    null::bigint as reference_rows,
    null::double precision as reference_share
where false

{% endif %}
