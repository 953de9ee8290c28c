{# Fails with one row per contract column that the relation lacks or holds in another
   type: the contract is the source's columns and their data_type (_master__sources.yml). #}
{% test matches_contract(model) %}

{%- set columns = [] -%}
{%- if execute -%}
    {%- set node = graph.sources.values() | selectattr('identifier', 'equalto', model.identifier)
                                          | selectattr('schema', 'equalto', model.schema) | first -%}
    {%- set columns = node.columns.values() | list -%}
{%- endif %}

with contract (column_name, expected_type, position) as (

    values
    {%- for column in columns %}
        ('{{ column.name }}', '{{ contract_type(column.data_type) }}', {{ loop.index }}){{ "," if not loop.last }}
    {%- endfor %}

),

actual as (

    {{ relation_column_types(model) }}

)

select
    contract.column_name,
    contract.expected_type,
    actual.actual_type,
    case
        when actual.actual_type is null then 'missing: add it to {{ model }} (null when you have no value)'
        else 'wrong type: cast it to ' || contract.expected_type || ' in {{ model }}'
    end as problem
from contract
left join actual using (column_name)
where actual.actual_type is distinct from contract.expected_type
order by contract.position

{% endtest %}

{% macro relation_column_types(relation) -%}
    {#- One row per column of the relation: column_name, actual_type (the engine's type name). -#}
    {{ return(adapter.dispatch('relation_column_types', 'custlabel')(relation)) }}
{%- endmacro %}

{% macro default__relation_column_types(relation) -%}
    select column_name::text, data_type::text as actual_type
    from information_schema.columns
    where table_schema = '{{ relation.schema }}' and table_name = '{{ relation.identifier }}'
{%- endmacro %}

{% macro spark__relation_column_types(relation) -%}
    {#- Spark's catalog is read through the adapter (no information_schema). -#}
    {%- set columns = adapter.get_columns_in_relation(relation) if execute else [] -%}
    select column_name, actual_type from values
    {%- for column in columns %}
        ('{{ column.name }}', '{{ column.data_type }}'){{ "," if not loop.last }}
    {%- else %}
        (cast(null as string), cast(null as string))
    {%- endfor %}
        as columns (column_name, actual_type)
    where column_name is not null
{%- endmacro %}
