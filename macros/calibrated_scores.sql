{% macro has_calibrated_scores(model_name) -%}
    {#- Whether a model's scores are calibrated probabilities of "bad", which estimates
        of precision and recall from the scores assume: a registered model's are (its
        calibration is checked, and fixed, at training). The rule baseline's are points
        (python/custlabel/baseline.py, MODEL_NAME): no estimate from them. -#}
    ({{ model_name }} <> 'rule-baseline')
{%- endmacro %}
