{% macro in_drift_sample(customer_id, customers) -%}
    {#- Whether a customer is in the night's drift sample: a stable hash slice of about
        var('drift_sample_customers') of the night's `customers` (everyone when fewer). -#}
    (abs({{ text_hash(customer_id) }}) % 10000) < 10000.0 * {{ var('drift_sample_customers', 200000) }} / {{ customers }}
{%- endmacro %}
