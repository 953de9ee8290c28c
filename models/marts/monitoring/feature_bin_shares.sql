{{ config(materialized='incremental', incremental_strategy=nights_strategy()) }}

{#- The columns of customer_features (bar the keys) are the monitored features: numbers
    are binned at the reference edges, text (segment, the sensitive attributes) by value. -#}
{%- set numeric, categorical = [], [] %}
{%- if execute %}
    {%- for column in adapter.get_columns_in_relation(ref('customer_features')) %}
        {%- if column.name in ('customer_id', 'as_of_date') %}
        {%- elif column.is_number() %}{% do numeric.append(column.name) %}
        {%- else %}{% do categorical.append(column.name) %}
        {%- endif %}
    {%- endfor %}
{%- endif %}
{%- set feature_names, binned_columns = [], [] %}
{%- for column in numeric + categorical %}
    {%- do feature_names.append("'" ~ column ~ "'") %}
    {%- do binned_columns.append('binned.' ~ column) %}
{%- endfor %}

-- One row per night, model version, feature and bin: how many of the customers the
-- version labelled that night (a stable sample of large nights, in_drift_sample) fall in each bin of the version's reference (bins in
-- model_reference_bins; -1 holds categories the training rows never had). Versions
-- without a stored reference (the rule baseline) have no rows. Incremental: nights
-- newer than the newest here, and tonight again (a re-run replaces it), are added;
-- after re-scoring an older night, run it with --full-refresh. feature_drift
-- compares the shares.
with

rates as (

    select * from {{ ref('label_rates') }}

),

-- the customers each version labelled each night, a stable sample of the large nights
history as (

    select history.as_of_date, history.customer_id, history.model_name, history.model_version
    from {{ ref('label_history') }} as history
    inner join rates using (as_of_date, model_name, model_version)
    where {{ in_drift_sample('history.customer_id', 'rates.customers') }}
        and {{ is_new_night('history.as_of_date') }}

),

features as (

    select * from {{ ref('customer_features') }}

),

reference as (

    select * from {{ ref('reference_bins') }}

),

-- one row per version: each feature's inner edges (numeric) or categories, in bin order
version_bins as (

    select
        model_name,
        model_version,
        {% for column in numeric %}
        {{ sorted_array_agg('lower_edge', 'bin', "feature = '" ~ column ~ "' and bin >= 2") }} as {{ column }},
        {% endfor %}
        {% for column in categorical %}
        {{ sorted_array_agg('category', 'bin', "feature = '" ~ column ~ "' and bin >= 1") }} as {{ column }},
        {% endfor %}
        count(*) as reference_bins
    from reference
    group by model_name, model_version

),

-- bin numbers of each labelled customer: 0 null, numeric width_bucket + 1, category
-- position (-1: a category the training rows never had)
binned as (

    select
        history.as_of_date,
        history.model_name,
        history.model_version,
        {% for column in numeric %}
        case when features.{{ column }} is null then 0
            else coalesce({{ bucket_of('features.' ~ column ~ '::' ~ type_float(), 'version_bins.' ~ column) }}, 0) + 1 end
            as {{ column }},
        {% endfor %}
        {% for column in categorical %}
        case when features.{{ column }} is null then 0
            else coalesce({{ array_position_of('version_bins.' ~ column, 'features.' ~ column ~ '::' ~ type_text()) }}, -1) end
            as {{ column }}{{ ',' if not loop.last }}
        {% endfor %}
    from history
    inner join features using (customer_id, as_of_date)
    inner join version_bins using (model_name, model_version)

),

-- one row per night, version, feature and bin: the bins unnested as an integer
-- array (the feature is its position), which Postgres counts faster than text pairs
night_bins as (

    select
        as_of_date,
        model_name,
        model_version,
        {{ array_item('(' ~ array_of(feature_names) ~ ')', 'position') }} as feature,
        bin,
        night_rows
    from (
        select
            binned.as_of_date,
            binned.model_name,
            binned.model_version,
            cell.position,
            cell.bin,
            count(*) as night_rows
        from binned
        {{ numbered_cells(binned_columns, 'cell') }}
        group by 1, 2, 3, 4, 5
    ) as counted

),

kinds as (

    select distinct model_name, model_version, feature, kind from reference

),

final as (

    select
        ---------- keys
        night_bins.as_of_date,
        night_bins.model_name,
        night_bins.model_version,
        night_bins.feature,
        night_bins.bin,
        kinds.kind as feature_kind,

        ---------- share of the night
        night_bins.night_rows::bigint as customers_in_bin,
        (night_bins.night_rows::{{ type_float() }} / sum(night_bins.night_rows) over (
            partition by night_bins.as_of_date, night_bins.model_name, night_bins.model_version, night_bins.feature
        ))::{{ type_float() }} as share

    from night_bins
    inner join kinds using (model_name, model_version, feature)

)

select * from final
