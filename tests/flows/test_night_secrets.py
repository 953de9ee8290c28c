"""A whole night run with known passwords (the warehouse's in DATABASE_URL, the BI role's) prints and logs neither.

Scanned: everything the run wrote to stdout and stderr (Prefect's and dbt's output
included), what `db url` and `db env` print beside it, every file under .local (reports,
dbt's log of every statement, the MLflow store), the server's log with DDL logged (the BI role is created
tonight), and the run and release records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from psycopg import sql

from custlabel import cli
from custlabel.config import Settings, get_settings
from custlabel.nightly import serving
from custlabel.scoring import grants
from custlabel.warehouse import db
from helpers.demo_warehouse import flow_demo
from helpers.night_config import ONE_FAMILY
from helpers.stores import new_release_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
OWNER = "pw_night_owner"
WAREHOUSE_PASSWORD = "warehouse-secret-5521 with spaces"
BI_PASSWORD = "bi-secret-8830"


def drop_bi_role(admin: Settings) -> None:
    """Drop the BI role in the whole cluster, so that tonight's grants create it with the known password."""
    with db.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", [grants.BI_ROLE]).fetchone():
            return
        databases = [name for (name,) in conn.execute("select datname from pg_database where datallowconn").fetchall()]
    for name in databases:
        with db.connect(get_settings({"PGHOST": admin.connection.host, "PGPORT": str(admin.connection.port),
                                      "PGUSER": admin.connection.user, "PGDATABASE": name}), autocommit=True) as conn:
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(grants.BI_ROLE)))
    with db.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(grants.BI_ROLE)))


@pytest.fixture(scope="module")
def night(make_database, password_auth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path, str, int]]:
    """Demo master data in a database of its own, a role with a known password, the night run through the CLI."""
    admin = make_database("night_secrets", demo=flow_demo(NIGHT))
    with db.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(OWNER)))
        verifier = conn.pgconn.encrypt_password(WAREHOUSE_PASSWORD.encode(), OWNER.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("create role {} login superuser password {}").format(sql.Identifier(OWNER), sql.Literal(verifier)))
        conn.execute(sql.SQL("alter role {} set log_statement = 'ddl'").format(sql.Identifier(OWNER)))
        log_file = Path(conn.execute("show data_directory").fetchone()[0]).parent / "pg.log"
    drop_bi_role(admin)
    local = tmp_path_factory.mktemp("night-secrets")
    address = admin.connection
    url = f"postgresql://{OWNER}:{WAREHOUSE_PASSWORD.replace(' ', '%20')}@{address.host}:{address.port}/{address.dbname}"
    written = log_file.stat().st_size
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE"):
            patch.delenv(name, raising=False)
        patch.setenv("DATABASE_URL", url)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("DBT_LOG_PATH", str(local / "dbt-logs"))  # scanned with the rest of .local
        patch.setenv("DBT_LOG_LEVEL_FILE", "debug")  # every statement, as a night logs them by default
        patch.setenv("CUSTLABEL_BI_PASSWORD", BI_PASSWORD)
        patch.setenv("CUSTLABEL_TARGET", "prod")
        for variable, value in ONE_FAMILY.items():
            patch.setenv(variable, value)
        from prefect.testing.utilities import prefect_test_harness

        new_release_log(get_settings())  # a new MLflow store: the shared warehouse's log must not name its versions
        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            yield get_settings(), local, log_file, written
    with db.connect(admin, autocommit=True) as conn:  # the BI role may be dropped by other tests, in their database
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(grants.BI_ROLE)))


def test_a_whole_night_neither_prints_nor_logs_a_password(night, capfd: pytest.CaptureFixture) -> None:
    settings, local, log_file, written = night
    code = cli.main(["nightly", "--as-of", str(NIGHT), "--retrain", "--auto-approve"])
    out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    assert "labels: " in out
    # What an operator runs beside the night to reach the same warehouse.
    assert cli.main(["db", "url"]) == 0 and cli.main(["db", "env"]) == 0
    db_out, db_err = capfd.readouterr()
    out, err = out + db_out, err + db_err
    server_log = log_file.read_bytes()[written:].decode(errors="replace")
    assert f'create role "{grants.BI_ROLE}" with login' in server_log and "password 'SCRAM-SHA-256$4096:" in server_log
    with db.connect(settings) as conn:
        records = [row[0] for row in conn.execute(
            "select r::text from analytics.pipeline_runs as r union all select e::text from analytics.model_releases as e"
        ).fetchall()]
    files = {path: path.read_bytes() for path in local.rglob("*") if path.is_file()}
    assert len(records) >= 3 and len(files) > 10
    # dbt's log holds the night's statements (the features' insert among them) though the terminal shows warnings only
    assert b'"target_name": "prod", "node_id": "model.custlabel.customer_features"} */' in files[local / "dbt-logs" / "dbt.log"]
    for secret in (WAREHOUSE_PASSWORD, WAREHOUSE_PASSWORD.replace(" ", "%20"), BI_PASSWORD):
        assert secret not in out and secret not in err
        assert secret not in server_log
        assert not [record for record in records if secret in record]
        assert not [str(path) for path, content in files.items() if secret.encode() in content]
    assert f"{OWNER}:***@{settings.connection.host}" in db_out  # db url printed the warehouse's URL, masked
