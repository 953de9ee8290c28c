{% macro sighting_night() -%}
    {#- The night what this run sees counts for, as 'YYYY-MM-DD': never the night being
        built (var as_of_date), so a replay does not backdate what it sees. It is the last
        complete night at the run's clock (run_started_at, in CUSTLABEL_TIMEZONE), or the
        night the extract covers when that is earlier: a run sees only what the extract
        held, and a load covers the night before the day it was made (master data without
        load times: the day of its newest change). An extract older than the snapshots'
        newest sighting is refused: what had been seen by then would be rewritten. -#}
    {%- set clock_night = last_complete_night() -%}
    {%- if not execute -%}
        {{ return(clock_night) }}
    {%- endif -%}
    {%- set query -%}
        select max(case when by_load_time then last_loaded_at::date - 1 else last_loaded_at::date end)::{{ type_text() }}
        from {{ ref('stg_master__loads') }}
    {%- endset -%}
    {%- set extract_night = run_query(query).columns[0].values()[0] or clock_night -%}
    {%- set newest = newest_sighting() -%}
    {%- if newest and extract_night < newest -%}
        {{ exceptions.raise_compiler_error(
            "master data's newest load covers night " ~ extract_night ~ ", older than the newest night the snapshots"
            ~ " have seen (" ~ newest ~ ", " ~ env_var('CUSTLABEL_TIMEZONE', 'UTC') ~ "): an older extract cannot be"
            ~ " replayed over newer sightings. Load an extract made after " ~ newest ~ " ended (custlabel load), or"
            ~ " replay the old extract in a fresh warehouse") }}
    {%- endif -%}
    {{ return([clock_night, extract_night] | min) }}
{%- endmacro %}

{% macro newest_sighting() -%}
    {#- The newest night the customers snapshot has recorded a sighting for, as
        'YYYY-MM-DD' (none before its first build). Found by name: a ref would make the
        snapshot's own source depend on it. -#}
    {%- set snapshot = adapter.get_relation(target.database, generate_schema_name('snapshots', none), 'customers_snapshot') -%}
    {%- if snapshot is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set newest = run_query("select max(seen_on)::" ~ type_text() ~ " from " ~ snapshot).columns[0].values()[0] -%}
    {{ return(newest) }}
{%- endmacro %}
