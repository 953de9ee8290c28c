"""The read-only BI role: it selects the label tables and the monitoring marts, and nothing else.

- `customer_labels` and `customer_label_history` in the target's schema: table grants
  (the nightly swap carries them over to the new table).
- The monitoring marts live in their own schema, `<target schema>_monitoring` (dbt
  `+schema: monitoring`): select on every table there now, and default privileges so
  the tables dbt creates later are covered too.
- Nothing in master_data, no writes anywhere: the role's sessions are read-only.

The embedded server trusts local connections, so the password only matters on a real
server; the default below is for the embedded demo and should be overridden elsewhere.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from custlabel import db, writeback
from custlabel.config import Settings, get_settings, schema_for
from custlabel.errors import CustlabelError

logger = logging.getLogger(__name__)

BI_ROLE = "custlabel_bi"
DEFAULT_BI_PASSWORD = "custlabel_bi"
SOURCE_SCHEMA = "master_data"
LABEL_TABLES = (writeback.LABELS, writeback.HISTORY)


def monitoring_schema(schema: str) -> str:
    """Where dbt builds the monitoring marts for a target schema."""
    return f"{schema}_monitoring"


def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone() is not None


def _ensure_role(conn: psycopg.Connection, role: str, password: str) -> None:
    verb = "alter" if _role_exists(conn, role) else "create"
    conn.execute(
        sql.SQL(verb + " role {} with login nosuperuser nocreatedb nocreaterole noinherit password {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(sql.Identifier(role)))


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", [schema]).fetchone() is not None


def grant_bi_access(
    settings: Settings | None = None,
    target: str | None = None,
    role: str = BI_ROLE,
    password: str | None = None,
    schema: str | None = None,
) -> list[str]:
    """Create or update the BI role and its grants for a target (or an explicit schema); returns what it did."""
    settings = settings or get_settings()
    schema = schema or schema_for(target or settings.target)
    monitoring = monitoring_schema(schema)
    password = password or getattr(settings, "bi_password", None) or DEFAULT_BI_PASSWORD
    if password == DEFAULT_BI_PASSWORD and not settings.embedded:
        logger.warning("role %s gets the documented default password: pass --password on a shared server", role)
    done = []
    with db.connect(settings) as conn:
        _ensure_role(conn, role, password)
        done.append(f"role {role}: login, read-only sessions")
        who = sql.Identifier(role)
        if _schema_exists(conn, SOURCE_SCHEMA):
            conn.execute(sql.SQL("revoke all on all tables in schema {s} from {r}").format(s=sql.Identifier(SOURCE_SCHEMA), r=who))
            conn.execute(sql.SQL("revoke all on schema {s} from {r}").format(s=sql.Identifier(SOURCE_SCHEMA), r=who))
        writeback.ensure_history(conn, schema)
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), who))
        for table in LABEL_TABLES:
            if db.relation_exists(conn, schema, table):
                conn.execute(sql.SQL("grant select on {} to {}").format(sql.Identifier(schema, table), who))
                done.append(f"select on {schema}.{table}")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(monitoring)))
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(monitoring), who))
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(sql.Identifier(monitoring), who))
        conn.execute(
            sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(
                sql.Identifier(monitoring), who
            )
        )
        done.append(f"select on every table of {monitoring}, now and later (tables created by {settings.connection.user})")
        done.append(_check_master_data_closed(conn, role))
    return done


def _check_master_data_closed(conn: psycopg.Connection, role: str) -> str:
    """Fail when the role could still read master data (e.g. through grants to PUBLIC)."""
    if not _schema_exists(conn, SOURCE_SCHEMA):
        return f"no {SOURCE_SCHEMA} schema here"
    usage, readable = conn.execute(
        """
        select has_schema_privilege(%(role)s, %(schema)s, 'usage'),
               count(*) filter (where has_table_privilege(%(role)s, c.oid, 'select'))
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = %(schema)s and c.relkind in ('r', 'v', 'm', 'p')
        """,
        {"role": role, "schema": SOURCE_SCHEMA},
    ).fetchone()
    if usage and readable:
        raise CustlabelError(
            f"{role} can still read {readable} {SOURCE_SCHEMA} tables through grants to PUBLIC:"
            f" revoke them (revoke usage on schema {SOURCE_SCHEMA} from public)"
        )
    return f"checked: {role} cannot read {SOURCE_SCHEMA}"
