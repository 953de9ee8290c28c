-- One row per master-data table: its newest load. `loaded_at` is stamped by
-- `custlabel load`; a table without load times (a company's view with loaded_at
-- null) falls back to its newest updated_at not in the future, the newest change it holds.
-- Each newest value is its own query, so that an index of master data's sales on loaded_at
-- and updated_at (contract.create_tables) reads it at once instead of every row.
with

final as (

    {% for table in ['customers', 'sales'] %}
    {% set rows = source('master_data', table) %}
    select
        '{{ table }}' as source_table,
        coalesce(
            (select max(loaded_at) from {{ rows }}),
            (select max(updated_at) from {{ rows }} where updated_at <= now())
        ) as last_loaded_at,
        (select max(loaded_at) from {{ rows }}) is not null as by_load_time
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
