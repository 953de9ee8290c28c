"""Passwords never reach output or logs: URLs, libpq strings, PG* assignments, the configured secrets."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from custlabel import cli, masking
from custlabel.config import get_settings
from custlabel.warehouse import embedded_postgres

URL = "postgresql://etl:p%40ss%20w0rd@db.example:5432/warehouse?sslmode=require"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URL, "postgresql://etl:***@db.example:5432/warehouse?sslmode=require"),
        ("postgresql+psycopg://etl:s3cret@db/warehouse", "postgresql+psycopg://etl:***@db/warehouse"),
        ("host=db user=etl password='it\\'s long' dbname=w", "host=db user=etl password=*** dbname=w"),
        ("host=db password=s3cret port=5432", "host=db password=*** port=5432"),
        ("export PGPASSWORD=s3cret", "export PGPASSWORD=***"),
        ("postgresql://etl@db/warehouse", "postgresql://etl@db/warehouse"),
    ],
)
def test_mask_hides_passwords_in_urls_and_connection_strings(text: str, expected: str) -> None:
    assert masking.mask(text) == expected


def test_mask_hides_a_known_secret_wherever_it_appears() -> None:
    assert masking.mask("could not log in with hunter2-long as etl", ["hunter2-long"]) == "could not log in with *** as etl"


def test_every_log_record_is_masked_once_protected(caplog: pytest.LogCaptureFixture) -> None:
    settings = get_settings({"DATABASE_URL": "postgresql://etl:logged-secret-42@db/w", "CUSTLABEL_BI_PASSWORD": "bi-secret-77"})
    masking.protect_logs(settings)
    with caplog.at_level(logging.INFO):
        logging.getLogger("prefect.anything").info("connecting as %s with %s", "etl", "logged-secret-42")
        logging.getLogger("custlabel.scoring.grants").warning("role failed: password bi-secret-77 refused")
    assert "logged-secret-42" not in caplog.text and "bi-secret-77" not in caplog.text
    assert "connecting as etl with ***" in caplog.text


def test_db_url_masks_the_password_unless_shown(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    assert cli.main(["db", "url"]) == 0
    masked = capsys.readouterr().out.strip()
    assert masked == "postgresql+psycopg://etl:***@db.example:5432/warehouse?sslmode=require"
    assert cli.main(["db", "url", "--show-password"]) == 0
    assert "etl:p%40ss w0rd@db.example" in capsys.readouterr().out


def test_db_env_prints_a_password_only_when_asked() -> None:
    connection = dataclasses.replace(get_settings({"DATABASE_URL": URL}).connection)
    assert "s w0rd" not in embedded_postgres.env_lines(connection)
    assert "# PGPASSWORD is not printed: keep yours, or add --show-password" in embedded_postgres.env_lines(connection)
    assert "export PGPASSWORD='p@ss w0rd'" in embedded_postgres.env_lines(connection, show_password=True)
