{% materialization snapshot, adapter='spark' %}
  {#- dbt-spark's snapshots merge into Delta, Iceberg or Hudi tables; the local session
      has Parquet, which cannot update rows. A first build writes every row as a current
      version, as dbt's own does. A later build writes the snapshot again into a new
      table, swapped in at the end: its versions, those dbt's staging query closes
      (changed or, with hard_deletes, deleted) given their dbt_valid_to, and the new
      versions added. Spark has no transactions: the swap is a drop and a rename. -#}
  {%- set identifier = model.get('alias', model.get('name')) -%}
  {%- set exists, target = get_or_create_relation(database=none, schema=model.schema, identifier=identifier, type='table') -%}
  {%- if not adapter.check_schema_exists(model.database, model.schema) -%}
    {% do create_schema(model.schema) %}
  {%- endif -%}

  {{ run_hooks(pre_hooks) }}
  {%- set strategy = strategy_dispatch(config.get('strategy'))(model, "snapshotted_data", "source_data", model['config'], exists) -%}
  {%- if not exists %}
    {% call statement('main') -%}
      {{ create_table_as(False, target, build_snapshot_table(strategy, model['compiled_code'])) }}
    {%- endcall %}
  {%- else %}
    {%- set staging = spark_build_snapshot_staging_table(strategy, sql, target) -%}
    {%- set rewritten = api.Relation.create(identifier=identifier ~ '__dbt_rewrite', schema=model.schema, database=none, type='table') -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='name') | list -%}
    {{ drop_relation_if_exists(load_cached_relation(rewritten)) }}
    {% call statement('main') -%}
      create table {{ rewritten }} using parquet as
      select
        {%- for column in columns %}
        {%- if column == 'dbt_valid_to' %}
        case when closed.dbt_scd_id is null then snapshotted.dbt_valid_to else closed.dbt_valid_to end as dbt_valid_to
        {%- else %}
        snapshotted.{{ column }}
        {%- endif %}{{ ',' if not loop.last }}
        {%- endfor %}
      from {{ target }} as snapshotted
      left join (
        select dbt_scd_id, dbt_valid_to from {{ staging }} where dbt_change_type in ('update', 'delete')
      ) as closed
        on closed.dbt_scd_id = snapshotted.dbt_scd_id and snapshotted.dbt_valid_to is null
      union all
      select {{ columns | join(', ') }} from {{ staging }} where dbt_change_type = 'insert'
    {%- endcall %}
    {% do adapter.drop_relation(staging) %}
    {% do adapter.drop_relation(target) %}
    {% do adapter.rename_relation(rewritten, target) %}
  {%- endif %}
  {% do persist_docs(target, model) %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target]}) }}
{% endmaterialization %}
