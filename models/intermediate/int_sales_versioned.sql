-- Indexed by sale: a kept night of int_customer_sale_windows reads the versions of the
-- few sales touched since the previous night, and each build replaces those of the sales changed.
{{
    config(
        materialized=incremental_by_key(),
        unique_key='sale_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['sale_id']}],
        pre_hook="{{ delete_versions_no_longer_clean() }}",
    )
}}

-- depends_on: {{ ref('int_sales_checked') }}
{% set built_at = versions_built_at(this) if is_incremental() else none %}
{% set changed_sales = sales_with_versions_changed_since(this, built_at) if built_at and built_at != earliest_time() else none %}

-- One row per version of each sale still clean that the sales snapshot saw edited (any
-- version of it closed), with the cutoffs between which that version was the one known: from the end
-- of the night it was first seen (never before its own updated_at's night) until the
-- end of the night its successor was. The earliest version has no start: the nights
-- before the snapshot saw the sale are reconstructed with it. Sales never edited are
-- not here (int_sales_known_at reads their current row for every night). Stored, not a
-- view: the features and outcomes of every night read it.
--
-- Incremental: a sale's rows depend only on its own versions in the snapshot and on
-- whether it is clean, so a build rewrites every version of the sales whose snapshot rows
-- or clean row changed since the newest build held (built_at; see
-- macros/sale_versions.sql), deleted then inserted by sale_id; the pre-hook deletes those
-- of the changed sales no longer clean. The watermark is the run's clock, which also
-- stamps the snapshot's seen_at and int_sales_checked's clean_changed_at: exact, where
-- the sales' own updated_at may arrive late. A first or --full-refresh build, and one
-- into an empty table (no sale edited yet), reads every version.
with

-- Each read through a partial index of the snapshot: its closed versions, and the
-- current versions of their sales. Only sales still clean (int_sales_known_at's sales),
-- each probed through the index on clean sale ids: a semi-join in the view hashed every
-- sale id on every read of it, and a probe there made every plan over the view serial.
closed_versions as (

    select snapshot.*
    from {{ ref('sales_snapshot') }} as snapshot
    {{ semi_join_probe('snapshot', ref('int_sales_validated'), 'sale_id') }}
    where snapshot.dbt_valid_to is not null
    {%- if changed_sales %}
        and {{ in_subquery('snapshot.sale_id', changed_sales) }}
    {%- endif %}

),

current_versions as (

    select * from {{ ref('sales_snapshot') }}
    where dbt_valid_to is null
        and sale_id in (select sale_id from closed_versions)

),

versions as (

    select
        *,
        greatest(seen_on, dbt_valid_from::date) as known_from
    from (
        select * from closed_versions
        union all
        select * from current_versions
    ) as all_versions

),

final as (

    select
        ---------- ids
        sale_id,
        customer_id,

        ---------- event timestamps
        sold_at,
        status_changed_at,
        due_at,
        paid_at,
        recorded_at,
        updated_at,

        ---------- amounts
        quantity,
        amount,

        ---------- attributes
        status,
        channel,
        status_change_time_unknown,

        ---------- payment facts (null until paid)
        days_to_pay,
        days_paid_after_due,

        ---------- when this version's facts were first seen late
        sale_seen_late_on,
        paid_seen_late_on,
        status_seen_late_on,

        ---------- the cutoffs between which this version was the one known
        case when row_number() over sale_versions > 1 then {{ known_before('known_from') }} end
            as version_known_from,
        {{ known_before('lead(known_from) over sale_versions') }} as version_known_until,

        ---------- when the build that wrote the row started
        cast('{{ run_started_at.isoformat() }}' as {{ type_timestamptz() }}) as built_at
    from versions
    window sale_versions as (partition by sale_id order by dbt_valid_from, dbt_scd_id)

)

select * from final
