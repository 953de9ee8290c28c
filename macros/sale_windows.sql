{% macro sale_window_parts(night) -%}
    {#- The parts of a customer's sales state at a night ('YYYY-MM-DD') that every feature
        of customer_features is derived from, as (name, aggregate, how two states
        combine: sum, min or max), over the rows of sales_state_on(night, ...). The sums
        are counts or numeric sums: a state kept by adding and subtracting sales equals
        the state aggregated in full, exactly. -#}
    {%- set as_of = "'" ~ night ~ "'::date" -%}
    {%- set counted = "in_window and status <> 'cancelled'" -%}
    {%- set completed = "in_window and status = 'completed'" -%}
    {%- set unpaid = completed ~ " and paid_at is null" -%}
    {%- set since_30d = "sold_at >= " ~ day_start(night, -29) -%}
    {%- set since_90d = "sold_at >= " ~ day_start(night, -89) -%}
    {%- set prev_90d = "sold_at >= " ~ day_start(night, -179) ~ " and sold_at < " ~ day_start(night, -89) -%}
    {%- set before_15d = "sold_at < " ~ day_start(night, -14) -%}
    {%- set since_120d = "sold_at >= " ~ day_start(night, -119) -%}
    {{ return([
        ('known_sales', 'count(*)', 'sum'),
        ('known_sales_checksum', 'coalesce(sum(' ~ text_hash('sale_id') ~ '), 0)', 'sum'),
        ('purchases', "count(*) filter (where status <> 'cancelled')", 'sum'),
        ('first_purchase_at', "min(sold_at) filter (where status <> 'cancelled')", 'min'),
        ('last_purchase_at', "max(sold_at) filter (where status <> 'cancelled')", 'max'),
        ('window_sales', 'count(*) filter (where in_window)', 'sum'),
        ('window_last_sold_at', 'max(sold_at) filter (where in_window)', 'max'),
        ('sales_count_30d', 'count(*) filter (where ' ~ counted ~ ' and ' ~ since_30d ~ ')', 'sum'),
        ('sales_count_90d', 'count(*) filter (where ' ~ counted ~ ' and ' ~ since_90d ~ ')', 'sum'),
        ('sales_count_prev_90d', 'count(*) filter (where ' ~ counted ~ ' and ' ~ prev_90d ~ ')', 'sum'),
        ('sales_count_365d', 'count(*) filter (where ' ~ counted ~ ')', 'sum'),
        ('revenue_30d', 'coalesce(sum(amount) filter (where ' ~ completed ~ ' and ' ~ since_30d ~ '), 0)', 'sum'),
        ('revenue_90d', 'coalesce(sum(amount) filter (where ' ~ completed ~ ' and ' ~ since_90d ~ '), 0)', 'sum'),
        ('revenue_prev_90d', 'coalesce(sum(amount) filter (where ' ~ completed ~ ' and ' ~ prev_90d ~ '), 0)', 'sum'),
        ('revenue_365d', 'coalesce(sum(amount) filter (where ' ~ completed ~ '), 0)', 'sum'),
        ('amount_sum_365d', 'coalesce(sum(amount) filter (where ' ~ counted ~ '), 0)', 'sum'),
        ('amount_count_365d', 'count(amount) filter (where ' ~ counted ~ ')', 'sum'),
        ('returns_count_365d', "count(*) filter (where in_window and status = 'returned')", 'sum'),
        ('cancellations_count_365d', "count(*) filter (where in_window and status = 'cancelled')", 'sum'),
        ('open_invoices_count', 'count(*) filter (where ' ~ unpaid ~ ' and due_at >= ' ~ as_of ~ ')', 'sum'),
        ('overdue_invoices_count', 'count(*) filter (where ' ~ unpaid ~ ' and due_at < ' ~ as_of ~ ')', 'sum'),
        ('overdue_amount', 'coalesce(sum(amount) filter (where ' ~ unpaid ~ ' and due_at < ' ~ as_of ~ '), 0)', 'sum'),
        ('due_invoices_count', 'count(*) filter (where ' ~ completed ~ ' and due_at < ' ~ as_of ~ ')', 'sum'),
        ('paid_late_count', 'count(*) filter (where in_window and days_paid_after_due > 0)', 'sum'),
        ('paid_count', 'count(days_to_pay) filter (where in_window)', 'sum'),
        ('days_to_pay_sum', 'coalesce(sum(days_to_pay::' ~ type_numeric() ~ ') filter (where in_window), 0)', 'sum'),
        ('paid_on_time_count', 'count(days_to_pay) filter (where in_window and days_paid_after_due <= 0)', 'sum'),
        ('days_to_pay_on_time_sum',
            'coalesce(sum(days_to_pay::' ~ type_numeric() ~ ') filter (where in_window and days_paid_after_due <= 0), 0)', 'sum'),
        ('paid_120d_count', 'count(days_to_pay) filter (where in_window and ' ~ since_120d ~ ')', 'sum'),
        ('days_to_pay_120d_sum',
            'coalesce(sum(days_to_pay::' ~ type_numeric() ~ ') filter (where in_window and ' ~ since_120d ~ '), 0)', 'sum'),
        ('returns_count_90d', "count(*) filter (where in_window and status = 'returned' and " ~ since_90d ~ ')', 'sum'),
        ('unpaid_invoices_15_90d', 'count(*) filter (where ' ~ unpaid ~ ' and ' ~ since_90d ~ ' and ' ~ before_15d ~ ')', 'sum'),
        ('returns_unpaid_90d',
            "count(*) filter (where in_window and status = 'returned' and paid_at is null and " ~ since_90d ~ ')', 'sum'),
        ('online_count', "count(*) filter (where in_window and channel in ('web', 'app'))", 'sum'),
        ('channel_count', 'count(channel) filter (where in_window)', 'sum'),
    ]) }}
{%- endmacro %}

{% macro sales_state_on(night, sales) -%}
    {#- Every sale of `sales` (rows of int_sales_known_at) known at a night, in the state
        it had then, flagged when it is in the active window before the night. -#}
    {%- set cutoff = day_start(night, 1) -%}
    select
        customer_id,
        sale_id,
        {{ sale_status_at(cutoff) }} as status,
        {{ sale_paid_at(cutoff) }} as paid_at,
        {{ sale_paid_at(cutoff, 'days_to_pay') }} as days_to_pay,
        {{ sale_paid_at(cutoff, 'days_paid_after_due') }} as days_paid_after_due,
        sold_at,
        sold_at >= {{ day_start(night, 1 - var('active_window_days')) }} as in_window,
        due_at,
        amount,
        channel
    from {{ sales }}
    where {{ sale_is_known(cutoff) }}
{%- endmacro %}

{% macro sale_window_state(night, sales) -%}
    {#- One row per customer with a sale of `sales` known at the night: the parts of
        sale_window_parts over those sales. -#}
    select
        customer_id,
        {%- for name, aggregate, combine in sale_window_parts(night) %}
        {{ aggregate }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from ({{ sales_state_on(night, sales) }}) as sales
    group by customer_id
{%- endmacro %}

{% macro sale_touched_between(previous, night) -%}
    {#- Over int_sales_known_at: the sale's part of the state may differ between the
        night `previous` and the later `night`: something about it became known between
        their cutoffs (the sale, a version, its status, its payment), it fell due, or
        its sale day crossed the edge of a window. -#}
    {%- set before, now = day_start(previous, 1), day_start(night, 1) -%}
    ((sale_known_at >= {{ before }} and sale_known_at < {{ now }})
        or (version_known_from > {{ before }} and version_known_from <= {{ now }})
        or (version_known_until > {{ before }} and version_known_until <= {{ now }})
        or (status_known_at >= {{ before }} and status_known_at < {{ now }})
        or (paid_known_at >= {{ before }} and paid_known_at < {{ now }})
        or {{ sale_days_crossed_between(previous, night) }})
{%- endmacro %}

{% macro sale_days_crossed_between(previous, night) -%}
    {#- The sale was sold between the nights `previous` and `night`, fell due between
        them, or its sale day crossed the edge of a window of sale_window_parts. -#}
    {%- set window_edges = [-14, -29, -89, -119, -179, 1 - var('active_window_days')] -%}
    ((sold_at >= {{ day_start(previous, 1) }} and sold_at < {{ day_start(night, 1) }})
        or (due_at >= '{{ previous }}'::date and due_at < '{{ night }}'::date)
        {%- for edge in window_edges %}
        or (sold_at >= {{ day_start(previous, edge) }} and sold_at < {{ day_start(night, edge) }})
        {%- endfor %})
{%- endmacro %}

{% macro sales_maybe_touched_between(previous, night) -%}
    {#- The ids of every sale that sale_touched_between(previous, night) may take, and a
        few more, read through indexes: each time it compares is the greatest of some of
        a version's own times and the days the snapshot saw them late, and a greatest lies
        in a range only if one of them does. So: clean sales whose own times fall in the
        compared ranges (int_sales_checked), sales the snapshot saw late in them, and the
        versions of edited sales (int_sales_versioned) whose own times, late days or
        bounds fall in them. -#}
    {%- set before, now = day_start(previous, 1), day_start(night, 1) -%}
    {%- set own_times_touched -%}
        ((recorded_at >= {{ before }} and recorded_at < {{ now }})
            or (status_changed_at >= {{ before }} and status_changed_at < {{ now }})
            or (paid_at >= {{ before }} and paid_at < {{ now }})
            or {{ sale_days_crossed_between(previous, night) }})
    {%- endset -%}
    {%- set seen_late_touched -%}
        (sale_seen_late_on between '{{ previous }}'::date and '{{ night }}'::date
            or paid_seen_late_on between '{{ previous }}'::date and '{{ night }}'::date
            or status_seen_late_on between '{{ previous }}'::date and '{{ night }}'::date)
    {%- endset -%}
    select sale_id from {{ ref('int_sales_checked') }}
    where quarantine_reason is null and not superseded and {{ own_times_touched }}
    union
    select sale_id from {{ ref('sales_snapshot') }}
    where dbt_valid_to is null
        and (sale_seen_late_on is not null or paid_seen_late_on is not null or status_seen_late_on is not null)
        and {{ seen_late_touched }}
    union
    select sale_id from {{ ref('int_sales_versioned') }}
    where (version_known_from > {{ before }} and version_known_from <= {{ now }})
        or (version_known_until > {{ before }} and version_known_until <= {{ now }})
        or {{ own_times_touched }}
        or {{ seen_late_touched }}
{%- endmacro %}

{% macro previous_night_held(nights, night, max_gap_days=62) -%}
    {#- The newest night before `night` that the model (night_by_night) holds or builds
        before it in this run, when at most max_gap_days earlier, as 'YYYY-MM-DD'; none
        on a first or full build, or where nights are not kept (keeps_nights): the night
        is then computed in full. -#}
    {%- if not execute or not keeps_nights() or load_relation(this) is none or should_full_refresh() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set held = run_query("select max(as_of_date)::" ~ type_text() ~ " from " ~ this ~ " where as_of_date < '" ~ night ~ "'::date").columns[0].values()[0] -%}
    {%- set candidates = (nights | select('lt', night) | list) + ([held] if held else []) -%}
    {%- if not candidates -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set previous = candidates | max -%}
    {%- set gap = modules.datetime.date.fromisoformat(night) - modules.datetime.date.fromisoformat(previous) -%}
    {{ return(previous if gap.days <= max_gap_days else none) }}
{%- endmacro %}

{% macro keeps_nights() -%}
    {#- Whether a night is kept from the previous night held (previous_night_held). -#}
    {{ return(adapter.dispatch('keeps_nights', 'custlabel')()) }}
{%- endmacro %}

{% macro default__keeps_nights() %}{{ return(true) }}{% endmacro %}

{% macro spark__keeps_nights() -%}
    {#- Only with spark_nights: kept. int_sales_checked is rebuilt whole every night on
        Spark, so a kept night there compares every customer's sales besides reading the
        touched ones, and measured slower than a night computed in full (docs/scale.md). -#}
    {{ return(var('spark_nights') == 'kept') }}
{%- endmacro %}
