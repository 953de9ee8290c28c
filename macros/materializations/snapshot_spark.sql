{% materialization snapshot, adapter='spark' %}
  {#- dbt-spark's snapshots merge into Delta, Iceberg or Hudi tables; the local session
      has Parquet only. This one writes a snapshot's first build (every row a current
      version, as dbt's own first build does) as a Parquet table, and stops on a later
      build with what to do: closing versions on Parquet is not written yet (docs/scale.md). -#}
  {%- set identifier = model.get('alias', model.get('name')) -%}
  {%- set exists, target = get_or_create_relation(database=none, schema=model.schema, identifier=identifier, type='table') -%}
  {%- if exists -%}
    {{ exceptions.raise_compiler_error(
        target ~ " exists: on Spark (Parquet) a snapshot is built once, in a fresh warehouse; later builds"
        ~ " need a Delta table (file_format: delta) or the Parquet rewrite not written yet (docs/scale.md)") }}
  {%- endif -%}
  {%- if not adapter.check_schema_exists(model.database, model.schema) -%}
    {% do create_schema(model.schema) %}
  {%- endif -%}

  {{ run_hooks(pre_hooks) }}
  {%- set strategy = strategy_dispatch(config.get('strategy'))(model, "snapshotted_data", "source_data", model['config'], false) -%}
  {% call statement('main') -%}
    {{ create_table_as(False, target, build_snapshot_table(strategy, model['compiled_code'])) }}
  {%- endcall %}
  {% do persist_docs(target, model) %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target]}) }}
{% endmaterialization %}
