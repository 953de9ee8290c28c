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
    null::{{ type_text() }} as model_name,
    null::{{ type_text() }} as model_version,
    null::{{ type_text() }} as feature,
    null::{{ type_text() }} as kind,
    null::integer as bin,
    null::{{ type_float() }} as lower_edge,
    null::{{ type_float() }} as upper_edge,
    null::{{ type_text() }} as category,
    null::bigint as reference_rows,
    null::{{ type_float() }} as reference_share
where false

{% endif %}
