"""The feature contract: the one list of feature columns training, scoring, reasons and benchmarks use.

The dbt contracts (customer_features_current, training_set) declare the same
columns; tests/unit/test_feature_contract.py checks that they agree.
"""

KEY_COLUMNS = ["customer_id", "as_of_date"]

NUMERIC_FEATURES = [
    "tenure_days",
    "days_since_last_sale",
    "sales_count_prev_90d",
    "sales_count_30d",
    "sales_count_90d",
    "sales_count_365d",
    "revenue_30d",
    "revenue_90d",
    "revenue_365d",
    "revenue_prev_90d",
    "revenue_trend_90d",
    "avg_sale_amount_365d",
    "return_rate_365d",
    "cancel_rate_365d",
    "open_invoices_count",
    "overdue_invoices_count",
    "overdue_amount",
    "overdue_share_365d",
    "late_payment_rate_365d",
    "avg_days_to_pay_365d",
    "avg_days_to_pay_on_time_365d",
    "avg_days_to_pay_120d",
    "online_share_365d",
    "returns_count_90d",
    "unpaid_invoices_15_90d",
    "returns_unpaid_90d",
    "days_since_first_purchase",
    "days_since_last_purchase",
    "repeat_purchases_count",
]

CATEGORICAL_FEATURES = ["segment"]

# The longest look back of any feature (the *_365d ones and the active-customer rule).
LOOKBACK_DAYS = 365

# Never model features by default: they feed the fairness report only.
SENSITIVE_ATTRIBUTES = ["country", "gender", "age_band"]

# Never model features: how a row was built ('observed' by the snapshot or 'reconstructed').
PROVENANCE_COLUMNS = ["history_source"]

LABEL_COLUMN = "is_bad"

MODEL_FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# The typed columns of the contracted feature mart customer_features_current, in order.
FEATURE_MART_COLUMNS: dict[str, str] = {
    "customer_id": "text",
    "as_of_date": "date",
    **{name: "double precision" for name in NUMERIC_FEATURES},
    **{name: "text" for name in CATEGORICAL_FEATURES + PROVENANCE_COLUMNS + SENSITIVE_ATTRIBUTES},
}

# What training_set adds: the outcome of the window after as_of_date.
OUTCOME_COLUMNS: dict[str, str] = {
    "window_end": "date",
    "net_paid_revenue": "double precision",
    "unpaid_invoices_count": "integer",
    LABEL_COLUMN: "integer",
}
