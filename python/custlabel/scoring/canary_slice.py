"""The canary slice: a stable hash bucket per customer, the same in Postgres, in Spark SQL and in Python."""

from __future__ import annotations

import hashlib

from psycopg import sql

BUCKETS = 100


def bucket_sql(column: str = "customer_id") -> sql.Composable:
    """SQL for the customer's bucket in [0, 100): the first 32 bits of md5(customer_id), mod 100."""
    return sql.SQL("(('x' || substr(md5({}), 1, 8))::bit(32)::bigint % {})").format(
        sql.Identifier(column), sql.Literal(BUCKETS)
    )


def bucket_spark_sql(column: str = "customer_id") -> str:
    """Spark SQL for the same bucket: the first 8 hex digits of md5(customer_id) read as an unsigned number, mod 100."""
    return f"(cast(conv(substr(md5(`{column}`), 1, 8), 16, 10) as bigint) % {BUCKETS})"


def bucket(customer_id: str) -> int:
    """The same bucket computed in Python (for tests and ad-hoc checks)."""
    return int(hashlib.md5(customer_id.encode()).hexdigest()[:8], 16) % BUCKETS


def validate_percent(percent: float) -> float:
    """The canary percent, checked to lie in [0, 100]."""
    if not 0 <= percent <= 100:
        raise ValueError(f"canary percent must be between 0 and 100, got {percent}")
    return percent
