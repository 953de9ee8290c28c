{% macro stage_master_sales(source_rows) -%}
{#- master_data.sales rows (a relation, or a subquery of some of its rows with every
    row of their sales): trimmed, cast, ranked among the versions of their sale, and
    flagged with the reason they cannot be used, or a status without its time. A row
    with a later version of its sale is superseded: history, neither clean nor
    quarantined. Rows of the newest version are exact copies (one kept, the others
    duplicate_sale) or conflict (different values: all set aside, conflicting_sale). -#}
with

source as (

    select
        source_rows.*,
        {{ sale_row_hash('source_rows') }} as source_row_hash
    from {{ source_rows }} as source_rows

),

renamed as (

    select
        ---------- ids
        nullif(trim(sale_id), '') as sale_id,
        nullif(trim(customer_id), '') as customer_id,

        ---------- event timestamps: the state of a sale at any date follows from them
        sold_at,
        status_changed_at,
        due_at,
        paid_at,
        recorded_at,
        updated_at,

        ---------- amounts
        quantity::{{ type_numeric() }} as quantity,
        amount::{{ type_numeric() }} as amount,

        ---------- attributes ('Returned ', 'COMPLETED' are fixed here)
        lower(trim(status)) as status,
        lower(nullif(trim(channel), '')) as channel,

        ---------- the source row as it was read, for the reconciliation test
        source_row_hash

    from source

),

ranked as (

    select
        *,
        row_number() over (
            partition by sale_id
            order by updated_at desc nulls last, source_row_hash
        ) as version_rank,
        coalesce(updated_at < max(updated_at) over (partition by sale_id), false) as superseded,
        min(source_row_hash) over same_version <> max(source_row_hash) over same_version as conflicting
    from renamed
    window same_version as (partition by sale_id, updated_at)

),

final as (

    select
        sale_id,
        customer_id,
        sold_at,
        status_changed_at,
        due_at,
        paid_at,
        recorded_at,
        updated_at,
        quantity,
        amount,
        status,
        channel,
        -- returned or cancelled, but not said when: known only from when it was first seen
        status in ('returned', 'cancelled') and status_changed_at is null as status_change_time_unknown,
        source_row_hash,
        superseded,
        case
            when superseded then null
            when sale_id is null or customer_id is null or sold_at is null or quantity is null
                or amount is null or status is null or updated_at is null
                then 'missing_required'
            when conflicting then 'conflicting_sale'
            when version_rank > 1 then 'duplicate_sale'
            when status not in ('completed', 'returned', 'cancelled') then 'unknown_status'
            when amount < 0 or amount > {{ var('max_sale_amount') }} then 'amount_out_of_range'
            when quantity <= 0 then 'quantity_out_of_range'
            when sold_at > coalesce(recorded_at, updated_at) + interval '1 day' then 'sold_after_it_was_recorded'
            when status_changed_at < sold_at or paid_at < sold_at then 'event_before_sale'
        end as quarantine_reason
    from ranked

)

select * from final
{%- endmacro %}


{% macro sale_row_hash(row) -%}
    {#- A 64-bit hash of a master_data.sales row's contract columns, independent of the
        session's time zone (a timestamp hashes its instant): the reconciliation test
        sums it to see edits that kept their updated_at. -#}
    {{ return(adapter.dispatch('sale_row_hash', 'custlabel')(row)) }}
{%- endmacro %}

{% macro default__sale_row_hash(row) -%}
    {#- Hashed as a record, not as its text: a third of the time over every sale. -#}
    hash_record_extended(row(
        {{ row }}.sale_id, {{ row }}.customer_id, {{ row }}.sold_at, {{ row }}.quantity,
        {{ row }}.amount, {{ row }}.status, {{ row }}.status_changed_at, {{ row }}.due_at,
        {{ row }}.paid_at, {{ row }}.channel, {{ row }}.recorded_at, {{ row }}.updated_at
    ), 0)
{%- endmacro %}

{% macro spark__sale_row_hash(row) -%}
    {#- Spark's timestamps hash as instants already. -#}
    {{ row_hash([
        row ~ '.sale_id', row ~ '.customer_id', row ~ '.sold_at', row ~ '.quantity', row ~ '.amount', row ~ '.status',
        row ~ '.status_changed_at', row ~ '.due_at', row ~ '.paid_at', row ~ '.channel', row ~ '.recorded_at',
        row ~ '.updated_at',
    ]) }}
{%- endmacro %}

{% macro unkeyed_sale_id(column) -%}
    {#- Rows whose sale id is not written as it is keyed (null, empty, or with spaces
        around it): the predicate of master data's partial index on them
        (contract.create_tables), so that it is written the same in both places. -#}
    ({{ column }} is null or {{ column }} ~ '^ | $' or {{ column }} = '')
{%- endmacro %}
