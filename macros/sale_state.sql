{% macro sale_is_known(cutoff) -%}
    {#- Over int_sales_known_at: the sale had happened and was known before the cutoff, in
        the version known then (one row per sale). -#}
    (sold_at < {{ cutoff }} and sale_known_at < {{ cutoff }}
        and (version_known_from is null or version_known_from <= {{ cutoff }})
        and (version_known_until is null or version_known_until > {{ cutoff }}))
{%- endmacro %}

{% macro sale_status_at(cutoff) -%}
    {#- Until its status was known, a sale was completed (the state every sale starts in). -#}
    case when status_known_at < {{ cutoff }} then status else 'completed' end
{%- endmacro %}

{% macro sale_paid_at(cutoff, fact='paid_at') -%}
    {#- A payment fact (paid_at, days_to_pay, ...) as known at the cutoff: null until paid and known. -#}
    case when paid_known_at < {{ cutoff }} then {{ fact }} end
{%- endmacro %}
