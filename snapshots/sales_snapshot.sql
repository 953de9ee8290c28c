{% snapshot sales_snapshot %}

{{
    config(
        unique_key='sale_id',
        strategy='timestamp',
        updated_at='updated_at',
        post_hook="create index if not exists {{ this.identifier }}_current_sale_id on {{ this }} (sale_id) where dbt_valid_to is null",
    )
}}

{% set existing = adapter.get_relation(this.database, this.schema, this.identifier) %}

select * from {{ ref('int_sales_validated') }}
{% if existing %}
where updated_at > {{ changed_since_last_build(this, 'dbt_updated_at') }}
{% endif %}

{% endsnapshot %}
