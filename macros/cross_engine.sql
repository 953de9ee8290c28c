{#- What differs between the engines the project runs on: Postgres (the default__ versions,
    whose SQL is what the models always said) and Spark (spark__). A model says what it
    means (a timestamp with a zone, days between two dates); each engine says how. -#}

{% macro type_timestamptz() -%}
    {#- An instant: Postgres's timestamptz; Spark's timestamp is one (session time zone). -#}
    {{ return(adapter.dispatch('type_timestamptz', 'custlabel')()) }}
{%- endmacro %}
{% macro default__type_timestamptz() %}{{ return('timestamptz') }}{% endmacro %}
{% macro spark__type_timestamptz() %}{{ return('timestamp') }}{% endmacro %}

{% macro type_float() -%}
    {#- A double: Postgres's float is 8 bytes, Spark's 4. -#}
    {{ return(adapter.dispatch('type_float', 'custlabel')()) }}
{%- endmacro %}
{% macro default__type_float() %}{{ return('float') }}{% endmacro %}
{% macro spark__type_float() %}{{ return('double') }}{% endmacro %}

{% macro type_numeric() -%}
    {#- An exact decimal: Spark's bare numeric is decimal(10,0) and would round to integers. -#}
    {{ return(adapter.dispatch('type_numeric', 'custlabel')()) }}
{%- endmacro %}
{% macro default__type_numeric() %}{{ return('numeric') }}{% endmacro %}
{% macro spark__type_numeric() %}{{ return('decimal(38,18)') }}{% endmacro %}

{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'custlabel')()) }}
{%- endmacro %}
{% macro default__type_text() %}{{ return('text') }}{% endmacro %}
{% macro spark__type_text() %}{{ return('string') }}{% endmacro %}

{% macro contract_type(data_type) -%}
    {#- A contract's column type, written in Postgres's words in the YAML (the master data's
        in _master__sources.yml, the marts' data_type), as the engine names it
        (custlabel.demo.spark_master_data writes the same Spark types). -#}
    {{ return(adapter.dispatch('contract_type', 'custlabel')(data_type)) }}
{%- endmacro %}
{% macro default__contract_type(data_type) %}{{ return(data_type) }}{% endmacro %}
{% macro spark__contract_type(data_type) -%}
    {{ return({
        'text': 'string', 'timestamp with time zone': 'timestamp', 'timestamptz': 'timestamp',
        'numeric': 'decimal(38,18)', 'double precision': 'double', 'float': 'double', 'integer': 'int',
    }.get(data_type, data_type)) }}
{%- endmacro %}

{% macro spark__get_empty_schema_sql(columns) -%}
    {#- dbt's check of an enforced contract on Spark: the columns the YAML declares, each cast
        to its type as Spark names it (contract_type), so one YAML holds on both engines. -#}
    {%- set spark_columns = {} -%}
    {%- for name in columns -%}
        {%- do spark_columns.update({name: dict(columns[name], data_type=contract_type(columns[name]['data_type']))}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(spark_columns)) }}
{%- endmacro %}

{% macro text_hash(expression) -%}
    {#- A 32-bit hash of a text, for checksums summed over rows. -#}
    {{ return(adapter.dispatch('text_hash', 'custlabel')(expression)) }}
{%- endmacro %}
{% macro default__text_hash(expression) %}hashtext({{ expression }}){% endmacro %}
{% macro spark__text_hash(expression) %}hash({{ expression }}){% endmacro %}

{% macro row_hash(columns) -%}
    {#- A 64-bit hash of a row's values (a list of expressions), for telling rows apart. -#}
    {{ return(adapter.dispatch('row_hash', 'custlabel')(columns)) }}
{%- endmacro %}
{% macro default__row_hash(columns) -%}
    hashtextextended(row(
        {{ columns | join(', ') }}
    )::text, 0)
{%- endmacro %}
{% macro spark__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{% macro days_between(start_date, end_date) -%}
    {#- Whole days from one date to a later one, as an integer. -#}
    {{ return(adapter.dispatch('days_between', 'custlabel')(start_date, end_date)) }}
{%- endmacro %}
{% macro default__days_between(start_date, end_date) %}{{ end_date }} - {{ start_date }}{% endmacro %}
{% macro spark__days_between(start_date, end_date) %}datediff({{ end_date }}, {{ start_date }}){% endmacro %}

{% macro days_between_times(start_time, end_time) -%}
    {#- Days, with their fraction, from one instant to a later one. -#}
    {{ return(adapter.dispatch('days_between_times', 'custlabel')(start_time, end_time)) }}
{%- endmacro %}
{% macro default__days_between_times(start_time, end_time) -%}
    date_part('epoch', {{ end_time }} - {{ start_time }}) / 86400.0
{%- endmacro %}
{% macro spark__days_between_times(start_time, end_time) -%}
    (unix_micros({{ end_time }}) - unix_micros({{ start_time }})) / 8.64e10
{%- endmacro %}

{% macro full_years_between(start_date, end_date) -%}
    {#- Birthdays passed from start_date to end_date (age in years). -#}
    {{ return(adapter.dispatch('full_years_between', 'custlabel')(start_date, end_date)) }}
{%- endmacro %}
{% macro default__full_years_between(start_date, end_date) -%}
    date_part('year', age({{ end_date }}, {{ start_date }}))
{%- endmacro %}
{% macro spark__full_years_between(start_date, end_date) -%}
    (year({{ end_date }}) - year({{ start_date }})
        - case when month({{ end_date }}) * 100 + day({{ end_date }})
            < month({{ start_date }}) * 100 + day({{ start_date }}) then 1 else 0 end)
{%- endmacro %}

{% macro not_materialized() -%}
    {#- A CTE read twice, inlined where it is read rather than copied first (Postgres). -#}
    {{ return(adapter.dispatch('not_materialized', 'custlabel')()) }}
{%- endmacro %}
{% macro default__not_materialized() %}{{ return('not materialized') }}{% endmacro %}
{% macro spark__not_materialized() %}{{ return('') }}{% endmacro %}

{% macro work_mem(size) -%}
    {#- A pre-hook for a model built whole (its first build, or a full refresh): Postgres keeps a big
        aggregation's hash tables in memory, for the model's transaction only (a session-wide setting
        would follow every model and test the connection runs next). A night's build reads the night's
        rows within the server's own work_mem: a backend of its hashes takes gigabytes otherwise.
        Spark has no such setting. -#}
    {%- if should_full_refresh() or load_cached_relation(this) is none -%}
        {{ return(adapter.dispatch('work_mem', 'custlabel')(size)) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
{% macro default__work_mem(size) %}{{ return("set local work_mem = '" ~ size ~ "'") }}{% endmacro %}
{% macro spark__work_mem(size) %}{{ return('') }}{% endmacro %}

{% macro refresh_statistics(relation) -%}
    {{ return(adapter.dispatch('refresh_statistics', 'custlabel')(relation)) }}
{%- endmacro %}
{% macro default__refresh_statistics(relation) %}{{ return('analyze ' ~ relation) }}{% endmacro %}
{% macro spark__refresh_statistics(relation) %}{{ return('analyze table ' ~ relation ~ ' compute statistics') }}{% endmacro %}

{% macro period_starts(every, months_back, until) -%}
    {#- A set-returning select expression: the start of each `every` (month, or week from
        Monday) from the one holding the day months_back months before the date `until`,
        up to `until`. -#}
    {{ return(adapter.dispatch('period_starts', 'custlabel')(every, months_back, until)) }}
{%- endmacro %}
{% macro default__period_starts(every, months_back, until) -%}
    generate_series(
        date_trunc('{{ every }}', {{ until }} - interval '{{ months_back }} months'),
        {{ until }}::timestamp,
        interval '1 {{ every }}'
    )::date
{%- endmacro %}
{% macro spark__period_starts(every, months_back, until) -%}
    explode(sequence(
        to_date(date_trunc('{{ every }}', add_months({{ until }}, -{{ months_back }}))),
        {{ until }},
        interval 1 {{ every }}
    ))
{%- endmacro %}

{% macro table_format() -%}
    {#- The clause a `create table` of our own ends with: Spark's tables are Parquet. -#}
    {{ return(adapter.dispatch('table_format', 'custlabel')()) }}
{%- endmacro %}
{% macro default__table_format() %}{{ return('') }}{% endmacro %}
{% macro spark__table_format() %}{{ return('using parquet') }}{% endmacro %}

{% macro incremental_by_key() -%}
    {#- The materialization of a model kept by delete+insert of changed keys: incremental on
        Postgres; on Spark a table built in full each time (Parquet cannot delete rows). -#}
    {{ return(adapter.dispatch('incremental_by_key', 'custlabel')()) }}
{%- endmacro %}
{% macro default__incremental_by_key() %}{{ return('incremental') }}{% endmacro %}
{% macro spark__incremental_by_key() %}{{ return('table') }}{% endmacro %}

{% macro decimal_ratio(numerator, denominator) -%}
    {#- numerator / denominator of two decimal sums, to a double's precision: Spark keeps only 6
        decimals when it divides decimal(38, s) by decimal(38, s). -#}
    {{ return(adapter.dispatch('decimal_ratio', 'custlabel')(numerator, denominator)) }}
{%- endmacro %}
{% macro default__decimal_ratio(numerator, denominator) %}{{ numerator }} / {{ denominator }}{% endmacro %}
{% macro spark__decimal_ratio(numerator, denominator) %}cast({{ numerator }} as double) / {{ denominator }}{% endmacro %}

{% macro earliest_time() -%}
    {#- A time before every other, as a literal: Spark has no '-infinity'. -#}
    {{ return(adapter.dispatch('earliest_time', 'custlabel')()) }}
{%- endmacro %}
{% macro default__earliest_time() %}{{ return("'-infinity'::timestamptz") }}{% endmacro %}
{% macro spark__earliest_time() %}{{ return("timestamp'0001-01-01 00:00:00'") }}{% endmacro %}

{% macro semi_join_probe(alias, relation, column) -%}
    {#- Keeps the rows of `alias` that have a row of `relation` with the same `column`. On
        Postgres a probe of relation's index per row (a lateral `limit 1`), where a semi-join
        would hash the whole relation; on Spark a left semi join. -#}
    {{ return(adapter.dispatch('semi_join_probe', 'custlabel')(alias, relation, column)) }}
{%- endmacro %}
{% macro default__semi_join_probe(alias, relation, column) -%}
    cross join lateral (
        select from {{ relation }} as probed
        where probed.{{ column }} = {{ alias }}.{{ column }}
        limit 1
    ) as probed
{%- endmacro %}
{% macro spark__semi_join_probe(alias, relation, column) -%}
    left semi join {{ relation }} as probed on probed.{{ column }} = {{ alias }}.{{ column }}
{%- endmacro %}

{% macro row_as_json(alias, relation, without) -%}
    {#- A row of a relation (its CTE's alias) as a JSON object, less some columns: Postgres's
        jsonb; a JSON string on Spark (its columns read from the relation). -#}
    {{ return(adapter.dispatch('row_as_json', 'custlabel')(alias, relation, without)) }}
{%- endmacro %}
{% macro default__row_as_json(alias, relation, without) -%}
    to_jsonb({{ alias }}){% for column in without %} - '{{ column }}'{% endfor %}
{%- endmacro %}
{% macro spark__row_as_json(alias, relation, without) -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | reject('in', without) | list
        if execute else [] -%}
    to_json(named_struct({% for column in columns %}'{{ column }}', {{ alias }}.{{ column }}{{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}

{% macro hours_between_times(start_time, end_time) -%}
    {#- Hours, with their fraction, from one instant to a later one. -#}
    {{ return(adapter.dispatch('hours_between_times', 'custlabel')(start_time, end_time)) }}
{%- endmacro %}
{% macro default__hours_between_times(start_time, end_time) -%}
    extract(epoch from {{ end_time }} - {{ start_time }}) / 3600.0
{%- endmacro %}
{% macro spark__hours_between_times(start_time, end_time) -%}
    (unix_micros({{ end_time }}) - unix_micros({{ start_time }})) / 3.6e9
{%- endmacro %}

{% macro integers(first, last, alias, column) -%}
    {#- A relation of the integers first..last, as alias (column). -#}
    {{ return(adapter.dispatch('integers', 'custlabel')(first, last, alias, column)) }}
{%- endmacro %}
{% macro default__integers(first, last, alias, column) -%}
    generate_series({{ first }}, {{ last }}) as {{ alias }} ({{ column }})
{%- endmacro %}
{% macro spark__integers(first, last, alias, column) -%}
    (select explode(sequence({{ first }}, {{ last }})) as {{ column }}) as {{ alias }}
{%- endmacro %}

{% macro distinct_text_list(expression, condition) -%}
    {#- The distinct values where condition holds, sorted and joined by ', ' (null when none). -#}
    {{ return(adapter.dispatch('distinct_text_list', 'custlabel')(expression, condition)) }}
{%- endmacro %}
{% macro default__distinct_text_list(expression, condition) -%}
    string_agg(distinct {{ expression }}, ', ') filter (where {{ condition }})
{%- endmacro %}
{% macro spark__distinct_text_list(expression, condition) -%}
    nullif(array_join(array_sort(collect_set(case when {{ condition }} then {{ expression }} end)), ', '), '')
{%- endmacro %}

{% macro materialized_cte() -%}
    {#- A CTE of a few rows read by many, computed once (Postgres); Spark plans it itself. -#}
    {{ return(adapter.dispatch('materialized_cte', 'custlabel')()) }}
{%- endmacro %}
{% macro default__materialized_cte() %}{{ return('materialized') }}{% endmacro %}
{% macro spark__materialized_cte() %}{{ return('') }}{% endmacro %}

{% macro nights_strategy() -%}
    {#- How an incremental monitoring mart replaces the nights it builds: delete+insert by
        as_of_date on Postgres; on Spark an insert overwrite of their partitions (Parquet
        cannot delete rows; the marts are partitioned by as_of_date there). -#}
    {{ return(adapter.dispatch('nights_strategy', 'custlabel')()) }}
{%- endmacro %}
{% macro default__nights_strategy() %}{{ return('delete+insert') }}{% endmacro %}
{% macro spark__nights_strategy() %}{{ return('insert_overwrite') }}{% endmacro %}

{% macro json_field_text(json, key) -%}
    {#- One field of a row written by row_as_json, as text. -#}
    {{ return(adapter.dispatch('json_field_text', 'custlabel')(json, key)) }}
{%- endmacro %}
{% macro default__json_field_text(json, key) %}{{ json }} ->> '{{ key }}'{% endmacro %}
{% macro spark__json_field_text(json, key) %}get_json_object({{ json }}, '$.{{ key }}'){% endmacro %}
