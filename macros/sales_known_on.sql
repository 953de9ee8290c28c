{% macro sales_known_on(night, sales) -%}
    {#- The sales (int_sales_known_at) of the active window before a night ('YYYY-MM-DD'),
        in the state they had that night, with the bounds as literals: Postgres then scans
        the sales in parallel and compares them to constants. -#}
    {%- set cutoff = day_start(night, 1) -%}
    {%- set as_of = "'" ~ night ~ "'::date" -%}
    select
        ---------- ids
        customer_id,
        {{ as_of }} as as_of_date,
        sale_id,

        ---------- state at the night
        {{ sale_status_at(cutoff) }} as status,
        {{ sale_paid_at(cutoff) }} as paid_at,
        {{ sale_paid_at(cutoff, 'days_to_pay') }} as days_to_pay,
        {{ sale_paid_at(cutoff, 'days_paid_after_due') }} as days_paid_after_due,

        ---------- facts fixed at the sale
        sold_at,
        {{ as_of }} - sold_at::date as age_days,
        due_at,
        amount,
        channel
    from {{ sales }}
    where sold_at >= {{ day_start(night, 1 - var('active_window_days')) }}
        and {{ sale_is_known(cutoff) }}
{%- endmacro %}
