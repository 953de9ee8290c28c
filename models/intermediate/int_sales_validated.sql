-- One row per clean sale: deduplicated, valid values, known customer.
with

checked as (

    select * from {{ ref('int_sales_checked') }}

),

final as (

    select
        ---------- ids
        sale_id,
        customer_id,

        ---------- event timestamps
        sold_at,
        status_changed_at,
        due_at,
        paid_at,
        recorded_at,
        updated_at,

        ---------- amounts
        quantity,
        amount,

        ---------- attributes
        status,
        channel,
        status_change_time_unknown,

        ---------- payment facts (null until paid)
        days_to_pay,
        days_paid_after_due
    from checked
    where quarantine_reason is null and not superseded

)

select * from final
