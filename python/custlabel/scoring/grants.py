"""The read-only BI role: it selects the label tables and the monitoring marts, and nothing else.

- `customer_labels` and `customer_label_history` in the target's schema: table grants
  (the nightly swap carries them over to the new table).
- The monitoring marts live in their own schema, `<target schema>_monitoring` (dbt
  `+schema: monitoring`): select on every table there now, and default privileges so
  the tables dbt creates later are covered too.
- Nothing in master_data, no writes and no tables anywhere: sessions are read-only by
  default, and the role holds no CREATE on any schema or the database and no TEMP of its
  own, so `set default_transaction_read_only = off` gains it nothing. PUBLIC's TEMP (the
  server's default) is left as it is: other roles keep their temp tables.
- Its password reaches the server SCRAM-hashed (computed here by libpq), never in clear.
- Its sessions have a statement timeout, an idle-in-transaction timeout and a
  connection limit (settings `bi_role`).

The tool only alters a role it created (marked by a comment on the role). Off the
embedded server the password comes from CUSTLABEL_BI_PASSWORD or a prompt, never the
demo one; an existing role keeps its password unless asked to reset it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from custlabel.config import Settings, monitoring_schema, schema_for
from custlabel.errors import CustlabelError
from custlabel.scoring import writeback
from custlabel.warehouse import db

logger = logging.getLogger(__name__)

BI_ROLE = "custlabel_bi"
DEMO_PASSWORD = "custlabel_bi"
MARKER = "custlabel: read-only BI role, managed by custlabel grants"
SOURCE_SCHEMA = "master_data"
LABEL_TABLES = (writeback.LABELS, writeback.HISTORY)


def _role_comment(conn: psycopg.Connection, role: str) -> tuple[bool, str | None]:
    """Whether the role exists, and its comment."""
    row = conn.execute(
        "select shobj_description(oid, 'pg_authid') from pg_roles where rolname = %s", [role]
    ).fetchone()
    return (row is not None, row[0] if row else None)


def _password(settings: Settings, role: str, given: str | None, prompt: Callable[[str], str] | None) -> str:
    """The password for a new role or a reset: given, CUSTLABEL_BI_PASSWORD, the prompt; the demo one only when embedded."""
    password = given or settings.bi_role.password
    if not password and settings.embedded:
        return DEMO_PASSWORD
    if not password and prompt is not None:
        password = prompt(f"password for the BI role {role}: ")
    if not password:
        raise CustlabelError(
            f"the BI role {role} needs a password on this server: set CUSTLABEL_BI_PASSWORD,"
            " or run `custlabel grants` in a terminal to be asked for one"
        )
    if password == DEMO_PASSWORD and not settings.embedded:
        raise CustlabelError(
            f"the documented demo password {DEMO_PASSWORD!r} is refused off the embedded server: choose another"
        )
    return password


def _ensure_role(
    conn: psycopg.Connection,
    settings: Settings,
    role: str,
    password: str | None,
    reset_password: bool,
    prompt: Callable[[str], str] | None,
) -> str:
    exists, comment = _role_comment(conn, role)
    who = sql.Identifier(role)
    if exists and comment != MARKER:
        raise CustlabelError(
            f"role {role} exists and was not created by custlabel grants, so it is left alone: choose another"
            f" --role, or hand it over with: comment on role {role} is '{MARKER}'"
        )
    attributes = sql.SQL("login nosuperuser nocreatedb nocreaterole noinherit noreplication nobypassrls")
    if exists and not reset_password:
        conn.execute(sql.SQL("alter role {} with {}").format(who, attributes))
        return f"role {role}: login, password kept (--reset-password to change it)"
    secret = _password(settings, role, password, prompt)
    verb = sql.SQL("alter" if exists else "create")
    # Hashed here (libpq's PQencryptPasswordConn): the server, its logs and pg_stat_activity never see the password.
    verifier = conn.pgconn.encrypt_password(secret.encode(), role.encode(), b"scram-sha-256").decode()
    conn.execute(sql.SQL("{} role {} with {} password {}").format(verb, who, attributes, sql.Literal(verifier)))
    conn.execute(sql.SQL("comment on role {} is {}").format(who, sql.Literal(MARKER)))
    return f"role {role}: login, password {'reset' if exists else 'set'}"


def _limit_sessions(conn: psycopg.Connection, settings: Settings, role: str) -> str:
    limits = settings.bi_role
    who = sql.Identifier(role)
    conn.execute(sql.SQL("alter role {} connection limit {}").format(who, sql.Literal(limits.connection_limit)))
    for name, value in [
        ("default_transaction_read_only", "on"),
        ("statement_timeout", limits.statement_timeout),
        ("idle_in_transaction_session_timeout", limits.idle_in_transaction_timeout),
    ]:
        conn.execute(sql.SQL("alter role {} set {} = {}").format(who, sql.Identifier(name), sql.Literal(value)))
    return (
        f"role {role}: read-only sessions, statement timeout {limits.statement_timeout},"
        f" idle in transaction {limits.idle_in_transaction_timeout}, at most {limits.connection_limit} connections"
    )


def _close_temp(conn: psycopg.Connection, role: str) -> str:
    """Revoke TEMP and CREATE on the database from the role; PUBLIC's grants are left as the server has them."""
    database = sql.Identifier(conn.info.dbname)
    conn.execute(sql.SQL("revoke temp, create on database {} from {}").format(database, sql.Identifier(role)))
    if conn.execute("select has_database_privilege('public', current_database(), 'temp')").fetchone()[0]:
        return (
            f"TEMP on database {conn.info.dbname} revoked from {role}; PUBLIC still grants it (the server's default,"
            f" left alone), so {role} can create temp tables, never tables: `revoke temp on database"
            f" {conn.info.dbname} from public` closes them for every role"
        )
    return f"no temp tables for {role} on database {conn.info.dbname}"


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", [schema]).fetchone() is not None


def grant_bi_access(
    settings: Settings,
    target: str | None = None,
    role: str = BI_ROLE,
    password: str | None = None,
    schema: str | None = None,
    reset_password: bool = False,
    prompt: Callable[[str], str] | None = None,
) -> list[str]:
    """Create or update the BI role and its grants for a target (or an explicit schema); returns what it did.

    Args:
        password: for a new role or with reset_password (default: CUSTLABEL_BI_PASSWORD, then the prompt).
        prompt: asks for a password when none is configured (the CLI passes getpass in a terminal).
    """
    schema = schema or schema_for(target or settings.target)
    monitoring = monitoring_schema(schema)
    done = []
    with db.connect(settings) as conn:
        done.append(_ensure_role(conn, settings, role, password, reset_password, prompt))
        done.append(_limit_sessions(conn, settings, role))
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
        for granted in (schema, monitoring):
            conn.execute(sql.SQL("revoke create on schema {} from {}").format(sql.Identifier(granted), who))
        done.append(_close_temp(conn, role))
        done.append(_check_master_data_closed(conn, role))
        done.append(_check_cannot_create(conn, role))
    return done


def ensure_for_nightly(settings: Settings, schema: str) -> list[str]:
    """The nightly's grants: always on the embedded server (the demo), elsewhere only with CUSTLABEL_BI_PASSWORD set.

    A problem is logged, not raised: the night's labels are published by then.
    """
    if not (settings.embedded or settings.bi_role.password):
        return []
    try:
        return grant_bi_access(settings, schema=schema)
    except CustlabelError as error:
        logger.warning("the BI role was not updated: %s", error)
        return [f"BI role not updated: {error}"]


def _check_cannot_create(conn: psycopg.Connection, role: str) -> str:
    """Fail when the role could create objects: CREATE on the database or a schema, or TEMP granted to it by name.

    TEMP through PUBLIC is the server's choice for every role (see _close_temp).
    """
    database_rights = conn.execute(
        "select has_database_privilege(%(role)s, current_database(), 'create'),"
        " exists (select from pg_database, aclexplode(datacl) as acl where datname = current_database()"
        "  and acl.grantee = %(role)s::regrole and acl.privilege_type = 'TEMPORARY')",
        {"role": role},
    ).fetchone()
    schemas = [
        name
        for (name,) in conn.execute(
            "select nspname from pg_namespace where has_schema_privilege(%s, oid, 'create') order by nspname", [role]
        ).fetchall()
    ]
    if any(database_rights) or schemas:
        where = [f"schema {name}" for name in schemas] + [
            f"{right} on database" for right, granted in zip(("create", "temp"), database_rights) if granted
        ]
        raise CustlabelError(
            f"{role} could still create objects ({', '.join(where)}) through grants to PUBLIC or a role it belongs to:"
            f" revoke them (e.g. revoke create on schema {schemas[0] if schemas else 'public'} from public)"
        )
    return f"checked: {role} cannot create tables, temp tables or schemas"


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
