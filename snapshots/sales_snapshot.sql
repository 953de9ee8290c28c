{% snapshot sales_snapshot %}

{#- Indexes for the nightly run: the current versions by sale id (the changed rows meet
    them), the newest dbt_updated_at (where the changed rows start), and the current
    versions by dbt_scd_id (dbt's merge closes them by it): none of it reads every version. -#}
{{
    config(
        unique_key='sale_id',
        strategy='timestamp',
        updated_at='updated_at',
        post_hook=[
            "{{ hook_index('current_sale_id', '(sale_id) where dbt_valid_to is null') }}",
            "{{ hook_index('closed_sale_id', '(sale_id) where dbt_valid_to is not null') }}",
            "{{ hook_index('updated', '(dbt_updated_at)') }}",
            "{{ hook_index('current_scd_id', '(dbt_scd_id) where dbt_valid_to is null') }}",
            "{{ hook_index('seen_at', '(seen_at)') }}",
            "{{ hook_index('late_facts', '(sale_id)
                include (sale_seen_late_on, paid_seen_late_on, status_seen_late_on)
                where dbt_valid_to is null and (sale_seen_late_on is not null
                    or paid_seen_late_on is not null or status_seen_late_on is not null)') }}",
        ],
    )
}}

-- depends_on: {{ ref('stg_master__loads') }}
{% set existing = adapter.get_relation(this.database, this.schema, this.identifier) %}
{# The night this run's sightings count for (its clock, never the night being built). #}
{% set seen_night = sighting_night() %}
{% set tonight = "'" ~ seen_night ~ "'::date" %}
{% set tonight_starts = day_start(seen_night, 0) %}
{% set seen_at = "'" ~ run_started_at.isoformat() ~ "'::" ~ type_timestamptz() %}

{% if existing %}
{% set held = adapter.get_columns_in_relation(existing) | map(attribute='name') | list %}
{% if 'status_seen_late_on' not in held %}
{{ exceptions.raise_compiler_error(
    this ~ " predates the columns that say when each fact was first seen: drop it (it held an audit trail only)"
    ~ " and build again; see docs/dbt-and-time.md, 'Time: what was known, when'") }}
{% endif %}
{% endif %}

-- One row per version of each clean sale. Besides the sale, each version records when
-- it was first seen (seen_at, the run's clock) and the night that counts for (seen_on,
-- see macros/sighting_night.sql), and the night each fact of the sale (the sale, its
-- payment, its status) was first seen when that is later than the night its own
-- timestamp says, or when it has no timestamp (a returned or cancelled status
-- without status_changed_at): the features of a night then see only what was known
-- that night. Before the snapshot's first night, the past is reconstructed from the
-- event timestamps alone, and a status without its own timestamp was never seen.
{% if existing %}

with

changed as (

    select * from {{ ref('int_sales_validated') }}
    where updated_at > {{ changed_since_last_build(this, 'dbt_updated_at') }}

)

select
    changed.*,
    {{ seen_at }} as seen_at,
    {{ tonight }} as seen_on,
    case
        when previous.sale_id is not null then previous.sale_seen_late_on
        when coalesce(changed.recorded_at, changed.sold_at) < {{ tonight_starts }} then {{ tonight }}
    end as sale_seen_late_on,
    case
        when changed.paid_at is null then null
        when previous.paid_at is not null then previous.paid_seen_late_on
        when changed.paid_at < {{ tonight_starts }} then {{ tonight }}
    end as paid_seen_late_on,
    case
        when changed.status = 'completed' then null
        when previous.status = changed.status then previous.status_seen_late_on
        when changed.status_changed_at is null or changed.status_changed_at < {{ tonight_starts }} then {{ tonight }}
    end as status_seen_late_on
from changed
left join {{ this }} as previous
    on previous.sale_id = changed.sale_id
    and previous.dbt_valid_to is null

{% else %}

select
    *,
    {{ seen_at }} as seen_at,
    {{ tonight }} as seen_on,
    null::date as sale_seen_late_on,
    null::date as paid_seen_late_on,
    case when status <> 'completed' and status_changed_at is null then {{ tonight }} end as status_seen_late_on
from {{ ref('int_sales_validated') }}

{% endif %}

{% endsnapshot %}
