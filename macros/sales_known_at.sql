{% macro sales_known_at(as_of, sales) -%}
    {#- The sales of the active window before as_of (a SQL expression), in the state
        they had that night. -#}
    {{ _sales_in_state(as_of, known_before(as_of), known_before(as_of) ~ " - interval '" ~ var('active_window_days') ~ " days'", sales) }}
{%- endmacro %}

{% macro sales_known_on(night, sales) -%}
    {#- The same for a constant night ('YYYY-MM-DD'), with its bounds as literals:
        Postgres then scans the sales in parallel and compares them to constants. -#}
    {{ _sales_in_state("'" ~ night ~ "'::date", day_start(night, 1), day_start(night, 1 - var('active_window_days')), sales) }}
{%- endmacro %}

{% macro _sales_in_state(as_of, cutoff, window_start, sales) -%}
    select
        ---------- ids
        customer_id,
        {{ as_of }} as as_of_date,
        sale_id,

        ---------- state at as_of
        {{ sale_status_at(cutoff) }} as status,
        {{ sale_paid_at(cutoff) }} as paid_at,
        {{ sale_paid_at(cutoff, 'days_to_pay') }} as days_to_pay,
        {{ sale_paid_at(cutoff, 'days_paid_after_due') }} as days_paid_after_due,

        ---------- facts fixed at the sale
        sold_at,
        {{ as_of }} - sold_at::date as age_days,
        due_at,
        amount::float as amount,
        channel
    from {{ sales }}
    where sold_at >= {{ window_start }}
        and {{ sale_is_known(cutoff) }}
{%- endmacro %}
