{% macro versions_built_at(relation) -%}
    {#- When the newest build of int_sales_versioned held in relation started, as a timestamptz
        literal ('-infinity' when it holds no row, or was built before it kept built_at: then
        every version is read and written again): that build saw every version the snapshot
        held then, and every clean row int_sales_checked held. -#}
    {%- if not holds_built_at(relation) -%}
        {{ return(earliest_time()) }}
    {%- endif -%}
    {%- set query = "select max(built_at)::" ~ type_text() ~ " from " ~ relation -%}
    {%- set built_at = run_query(query).columns[0].values()[0] -%}
    {{ return("'" ~ built_at ~ "'::" ~ type_timestamptz() if built_at else earliest_time()) }}
{%- endmacro %}

{% macro holds_built_at(relation) -%}
    {#- Whether int_sales_versioned (relation) has its built_at column: a table built before
        it was kept build by build has not. -#}
    {%- set held = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {{ return('built_at' in held) }}
{%- endmacro %}

{% macro sales_with_versions_changed_since(relation, built_at) -%}
    {#- The ids of the sales whose rows in int_sales_versioned (relation) may differ from a
        build that started at built_at, each arm read through an index: a version the
        snapshot wrote since (a new version, which closes the one before; seen_at is the
        clock of the run that wrote it, the same run_started_at as built_at's); a clean row
        int_sales_checked gave, took away or moved since (clean_changed_at, the same clock);
        and, when int_sales_checked was rebuilt in full since (every row checked since), the
        sales held here, of which one deleted from master data has left no row there. -#}
    select sale_id from {{ ref('sales_snapshot') }}
    where seen_at > {{ built_at }}
    union
    select sale_id from {{ ref('int_sales_checked') }}
    where clean_changed_at > {{ built_at }} and sale_id is not null
    union
    select sale_id from {{ relation }}
    where (select min(clean_changed_at) from {{ ref('int_sales_checked') }}) > {{ built_at }}
{%- endmacro %}

{% macro delete_versions_no_longer_clean() -%}
    {#- int_sales_versioned's pre-hook on an incremental build: the rows of the changed sales
        (sales_with_versions_changed_since) that are no longer clean (set aside, or deleted
        from master data). delete+insert by sale_id replaces only the sales the build
        writes rows for, and these have none. Nothing on a full build, nor into an empty
        table; every row of a table built before built_at was kept. -#}
    {%- if not is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {%- if not holds_built_at(this) -%}
        {#- built before it was kept build by build: emptied, this build writes every version
            (and dbt adds the column, on_schema_change) -#}
        {{ return('delete from ' ~ this) }}
    {%- endif -%}
    {%- set built_at = versions_built_at(this) -%}
    {%- if built_at == earliest_time() -%}
        {{ return('') }}
    {%- endif -%}
    {#- Each changed sale probed through the index on clean sale ids (a lateral limit 1): an
        anti-join hashed every clean sale, and filtered the held rows by the whole array. -#}
    {%- set no_longer_clean -%}
        select changed.sale_id
        from ({{ sales_with_versions_changed_since(this, built_at) }}) as changed
        left join lateral (
            select true as found from {{ ref('int_sales_validated') }} as clean
            where clean.sale_id = changed.sale_id
            limit 1
        ) as clean on true
        where clean.found is null
    {%- endset -%}
    delete from {{ this }} as held
    where {{ in_subquery('held.sale_id', no_longer_clean) }}
{%- endmacro %}
