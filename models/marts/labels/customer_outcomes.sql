{{ config(materialized='night_by_night') }}

{% set window_days = var('outcome_window_days') %}
{% set nights = nights_to_build(ref('customer_features')) | select('le', last_matured_night(window_days)) | list %}

-- One row per (customer_id, as_of_date) whose outcome window has matured: what
-- happened in (as_of_date, as_of_date + W], as known the night the window matured
-- (T + W + label_grace_days): every fact it reads (the sale, its status, its payment)
-- as known by the end of that night, so the nightly build, a `--full-refresh` and a
-- replay write the same label, whatever changed later. A window has matured when its
-- last day is complete, both tonight and at run time (a build for today's date writes
-- no label whose window ends today). Built one night at a time (the night_by_night
-- materialization), each night's window bounds as constants (a parallel scan).
--
-- The business rule, owned by the business owner: a customer is "bad" at T when,
-- in the window, they bring no net paid revenue (churned, or everything returned or
-- cancelled) or leave an invoice unpaid past its due date.
{% call(night) union_per_night(nights) %}
{% set window_start = day_start(night, 1) %}
{% set window_end_at = day_start(night, window_days + 1) %}
{% set known_when_matured = day_start(night, window_days + var('label_grace_days', 0) + 1) %}
with

customers as (

    select customer_id, as_of_date from {{ ref('customer_features') }}
    where as_of_date = '{{ night }}'::date

),

outcomes as (

    select
        customer_id,
        coalesce(sum(amount) filter (
            where sold_at >= {{ window_start }}
                and status = 'completed'
                and paid_at < {{ window_end_at }}
        ), 0) as net_paid_revenue,
        count(*) filter (
            where status = 'completed'
                and due_at > '{{ night }}'::date
                and due_at <= '{{ night }}'::date + {{ window_days }}
                and (paid_at is null or paid_at >= {{ window_end_at }})
        ) as unpaid_invoices_count
    from (
        select
            customer_id,
            sold_at,
            due_at,
            amount,
            {{ sale_status_at(known_when_matured) }} as status,
            {{ sale_paid_at(known_when_matured) }} as paid_at
        from {{ ref('int_sales_known_at') }}
        where {{ sale_is_known(known_when_matured) }}
    ) as sales
    where sold_at < {{ window_end_at }}
        and sold_at >= {{ day_start(night, 1 - var('active_window_days')) }}
        and (sold_at >= {{ window_start }} or due_at > '{{ night }}'::date)
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.as_of_date,
        customers.as_of_date + {{ window_days }} as window_end,
        coalesce(outcomes.net_paid_revenue, 0)::{{ type_float() }} as net_paid_revenue,
        coalesce(outcomes.unpaid_invoices_count, 0)::integer as unpaid_invoices_count,
        (coalesce(outcomes.net_paid_revenue, 0) <= 0 or coalesce(outcomes.unpaid_invoices_count, 0) > 0)::integer
            as is_bad
    from customers
    left join outcomes
        on outcomes.customer_id = customers.customer_id

)

select * from final
{% endcall %}
