"""Pure helpers of the embedded PostgreSQL."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from custlabel.config import Connection, get_settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import embedded_postgres


def test_socket_dir_is_under_local_dir_when_the_path_is_short() -> None:
    assert embedded_postgres.socket_dir_for(Path("/work/main/.local"), 55432) == Path("/work/main/.local/run")


def test_socket_dir_falls_back_to_a_short_stable_tmp_dir_when_the_path_is_too_long() -> None:
    local_dir = Path("/srv/" + "x" * 100)

    socket_dir = embedded_postgres.socket_dir_for(local_dir, 55432)

    assert socket_dir.parent == Path("/tmp") and socket_dir.name.startswith("custlabel-")
    assert socket_dir == embedded_postgres.socket_dir_for(local_dir, 55432)
    assert socket_dir != embedded_postgres.socket_dir_for(Path("/srv/" + "y" * 100), 55432)
    assert len(str(socket_dir / ".s.PGSQL.55432")) <= embedded_postgres.MAX_SOCKET_PATH


def test_server_options_survive_the_shell_with_spaces_in_paths() -> None:
    options = shlex.split(embedded_postgres.server_options(55432, Path("/data/my project/run")))

    pairs = dict(value.split("=", 1) for value in options[1::2])
    assert set(options[::2]) == {"-c"}
    assert pairs["unix_socket_directories"] == "/data/my project/run"
    assert pairs["listen_addresses"] == "127.0.0.1"
    assert pairs["port"] == "55432"
    assert pairs["shared_buffers"] == "1GB"


def test_env_lines_export_libpq_variables_quoted_and_omit_an_empty_password() -> None:
    connection = Connection("127.0.0.1", 55432, "postgres", "", "custlabel", timezone="Asia/Tokyo")

    assert embedded_postgres.env_lines(connection) == (
        "export PGHOST=127.0.0.1\nexport PGPORT=55432\nexport PGUSER=postgres\nexport PGDATABASE=custlabel"
        "\nexport PGTZ=Asia/Tokyo"
    )


def test_env_lines_quote_a_password_shown_on_purpose_and_can_put_a_folder_first_on_path() -> None:
    connection = Connection("db.example", 5432, "bi", "it's secret", "warehouse")

    lines = embedded_postgres.env_lines(connection, Path("/opt/pg bin"), show_password=True).splitlines()
    masked = embedded_postgres.env_lines(connection, Path("/opt/pg bin"))

    assert "export PGPASSWORD='it'\"'\"'s secret'" in lines
    assert lines[-1] == "export PATH='/opt/pg bin':\"$PATH\""
    assert "secret" not in masked and "# PGPASSWORD is not printed: keep yours, or add --show-password" in masked


def test_parse_postmaster_pid_reads_pid_port_and_socket_dir() -> None:
    text = "4734\n/tmp/wh/pgdata\n1764320552\n55440\n/tmp/wh/run\n127.0.0.1\n  55433108         4\nready   \n"

    assert embedded_postgres.parse_postmaster_pid(text) == embedded_postgres.Postmaster(4734, 55440, "/tmp/wh/run")


@pytest.mark.parametrize("text", ["", "garbage\n", "4734\n/tmp/wh/pgdata\n"])
def test_parse_postmaster_pid_ignores_incomplete_files(text: str) -> None:
    assert embedded_postgres.parse_postmaster_pid(text) is None


def test_unknown_action_is_a_clear_error() -> None:
    with pytest.raises(CustlabelError, match="unknown db action 'restart'"):
        embedded_postgres.run_action(get_settings({}), "restart")
