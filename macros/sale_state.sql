{% macro sale_is_known(cutoff) -%}
    (sold_at < {{ cutoff }} and coalesce(recorded_at, sold_at) < {{ cutoff }})
{%- endmacro %}

{% macro sale_status_at(cutoff) -%}
    {#- Before its status changed, a sale was completed (the state every sale starts in). -#}
    case
        when status_changed_at is null or status_changed_at < {{ cutoff }} then status
        else 'completed'
    end
{%- endmacro %}

{% macro sale_paid_at(cutoff, fact='paid_at') -%}
    {#- A payment fact (paid_at, days_to_pay, ...) as known at the cutoff: null until paid. -#}
    case when paid_at < {{ cutoff }} then {{ fact }} end
{%- endmacro %}
