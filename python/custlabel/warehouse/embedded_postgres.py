"""The embedded default PostgreSQL: a real PostgreSQL 16 from the pgserver wheel, kept in a folder.

`start`, `stop` and `status` manage a server in `<local_dir>/pgdata` that listens on
127.0.0.1:<port> and on a unix socket. Every TCP connection, the superuser's included,
logs in with a password (SCRAM): the superuser's is generated at first start and kept
in `<local_dir>/pgpass` (mode 0600, libpq's password file format), which the settings
name as libpq's `passfile`. The socket trusts its callers, but its folder is entered by
the server's owner only. A data folder of an earlier version (trust on 127.0.0.1) is
upgraded when it starts. When the settings point at an external Postgres (PG* variables or
DATABASE_URL), nothing is started or stopped: `start` only checks it is reachable.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import secrets
import shlex
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from custlabel import masking
from custlabel.config import PASSFILE, Connection, Settings
from custlabel.errors import CustlabelError

logger = logging.getLogger(__name__)

SERVER_USER = "pgserver"
# sizeof(sockaddr_un.sun_path) is 108 on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
ORPHAN_WAIT_SECONDS = 10.0

# Tuned for an analytics workload on 2 cores and 24 GB of memory.
SERVER_SETTINGS = {
    "max_connections": "100",
    "shared_buffers": "1GB",
    "effective_cache_size": "16GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "min_wal_size": "512MB",
    "checkpoint_timeout": "15min",
    # No replicas, so tables created and loaded in one transaction (dbt tables, COPY) skip the WAL.
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_worker_processes": "8",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_maintenance_workers": "2",
    "random_page_cost": "1.1",
    # Dates cut from timestamptz must not depend on the machine's time zone.
    "timezone": "UTC",
}

PG_HBA = """\
# Written by custlabel: SCRAM passwords on 127.0.0.1; trust on the socket, whose folder only the server's owner enters.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
"""
# The first line of the pg_hba.conf earlier versions wrote (trust on 127.0.0.1): replaced at start.
TRUSTING_HBA_HEADER = "# Written by custlabel: trust on the local socket and 127.0.0.1 only."
SUPERUSER = "postgres"


@dataclass(frozen=True)
class Postmaster:
    """What postmaster.pid says about a server."""

    pid: int
    port: int
    socket_dir: str


def bin_dir() -> Path:
    """The folder with the PostgreSQL 16 binaries shipped in the pgserver wheel."""
    # Located without importing pgserver, whose import warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise CustlabelError("the pgserver package is not installed: pip install pgserver")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def log_path(settings: Settings) -> Path:
    """Where the embedded server writes its log."""
    return settings.local_dir / "pg.log"


def socket_dir_for(local_dir: Path, port: int) -> Path:
    """A unix socket folder under local_dir, or a short one in /tmp if that path would be too long."""
    preferred = local_dir / "run"
    if len(str(preferred / f".s.PGSQL.{port}")) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha1(str(local_dir).encode()).hexdigest()[:12]
    return Path("/tmp") / f"custlabel-{digest}"


def server_options(port: int, socket_dir: Path) -> str:
    """The postgres command-line options, quoted for the shell pg_ctl runs them through."""
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        **SERVER_SETTINGS,
    }
    return " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items())


def env_lines(connection: Connection, path_prefix: Path | None = None, show_password: bool = False) -> str:
    """Shell `export` lines for libpq clients (psql, dbt), for eval: PGTZ cuts their days in the company's zone;
    a password only when asked."""
    variables = {**connection.pg_env(), "PGTZ": connection.timezone}
    password = variables.pop("PGPASSWORD")
    lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    if password and show_password:
        lines.append(f"export PGPASSWORD={shlex.quote(password)}")
    elif password:
        lines.append("# PGPASSWORD is not printed: keep yours, or add --show-password")
    if path_prefix is not None:
        lines.append(f'export PATH={shlex.quote(str(path_prefix))}:"$PATH"')
    return "\n".join(lines)


def parse_postmaster_pid(text: str) -> Postmaster | None:
    """The pid, port and socket folder from the text of a postmaster.pid file."""
    lines = text.splitlines()
    if len(lines) < 5 or not lines[0].strip().isdigit():
        return None
    port = int(lines[3]) if lines[3].strip().isdigit() else 0
    return Postmaster(pid=int(lines[0]), port=port, socket_dir=lines[4].strip())


def read_postmaster(data_dir: Path) -> Postmaster | None:
    """The server recorded in the data folder's lock file, if there is one."""
    try:
        return parse_postmaster_pid((data_dir / "postmaster.pid").read_text())
    except FileNotFoundError:
        return None


def is_alive(pid: int) -> bool:
    """Whether pid is a live postgres process (not a zombie, not a reused pid)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres"
    except psutil.NoSuchProcess:
        return False


def running_postmaster(settings: Settings) -> Postmaster | None:
    """The embedded server if it is running."""
    postmaster = read_postmaster(settings.embedded_data_dir)
    return postmaster if postmaster and is_alive(postmaster.pid) else None


def is_embedded_server(conn: psycopg.Connection, settings: Settings) -> bool:
    """Whether conn reaches the embedded server running in settings.local_dir (its data folder, not just its port).

    Also true when PG* variables name it (after `eval "$(custlabel db env)"`).
    """
    running = running_postmaster(settings)
    connection = settings.connection
    if running is None or running.port != connection.port or connection.host not in {"127.0.0.1", "localhost", running.socket_dir}:
        return False
    # pg_settings hides data_directory from roles that may not read it: then it is not ours.
    row = conn.execute("select setting from pg_settings where name = 'data_directory'").fetchone()
    return row is not None and Path(row[0]) == settings.embedded_data_dir


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option postgres sets, so a port in TIME_WAIT counts as free, as it does for postgres.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _next_free_port(taken: int) -> int:
    """The first port above `taken` that is free on 127.0.0.1, to suggest in an error."""
    return next((port for port in range(taken + 1, min(taken + 100, 65535)) if port_is_free("127.0.0.1", port)), taken + 1)


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run postgres as when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    result = subprocess.run([*command, SERVER_USER], capture_output=True, text=True)
    if result.returncode != 0:
        raise CustlabelError(
            f"PostgreSQL cannot run as root and creating the system user {SERVER_USER!r} failed: "
            f"{result.stderr.strip()}"
        )
    return pwd.getpwnam(SERVER_USER)


def _run_pg(program: str, args: list[str], account: pwd.struct_passwd | None) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program, as the server account when we are root."""
    as_user = {}
    if account is not None:
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    # A minimal environment: PG* variables meant for clients must not leak into the server.
    return subprocess.run(
        [str(bin_dir() / program), *args],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": os.defpath, "LC_ALL": "C"},
        **as_user,
    )


def _give_to(path: Path, account: pwd.struct_passwd | None, mode: int) -> None:
    """Make path owned by the server account with the given mode."""
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(mode)


def _allow_traversal(path: Path) -> None:
    """Let other users (the server account) traverse every folder above path."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.info("allowing other users to traverse %s so that postgres can reach its data", folder)
            folder.chmod(mode | stat.S_IXOTH)


def _prepare_folders(settings: Settings, socket_dir: Path, account: pwd.struct_passwd | None) -> None:
    """Create the data, socket and log locations, owned by the server account."""
    data_dir = settings.embedded_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    if socket_dir.is_symlink():
        raise CustlabelError(f"refusing to use {socket_dir} for the PostgreSQL socket: it is a symlink")
    socket_dir.mkdir(parents=True, exist_ok=True)
    log_path(settings).touch()
    if account is not None:
        _allow_traversal(data_dir)
        _allow_traversal(socket_dir)
        _allow_traversal(bin_dir())
    _give_to(data_dir, account, 0o700)
    _give_to(socket_dir, account, 0o700)
    _give_to(log_path(settings), account, 0o644)


def _initdb(settings: Settings, account: pwd.struct_passwd | None) -> None:
    """Create the database cluster on first use."""
    data_dir = settings.embedded_data_dir
    if (data_dir / "PG_VERSION").exists():
        return
    logger.info("creating a PostgreSQL cluster in %s", data_dir)
    # --no-locale: byte-order sorting, the same on every machine, and fast.
    args = ["-D", str(data_dir), "-U", SUPERUSER, "--encoding=UTF8", "--no-locale", "--auth-local=trust",
            "--auth-host=scram-sha-256"]
    result = _run_pg("initdb", args, account)
    if result.returncode != 0:
        raise CustlabelError(f"initdb failed for {data_dir}:\n{result.stderr.strip()}")
    (data_dir / "pg_hba.conf").write_text(PG_HBA)


def _upgrade_hba(settings: Settings) -> bool:
    """Replace the trusting pg_hba.conf an earlier version wrote (an operator's own file is left alone); whether it did."""
    hba = settings.embedded_data_dir / "pg_hba.conf"
    if not hba.read_text().startswith(TRUSTING_HBA_HEADER):
        return False
    logger.warning("%s trusted every connection on 127.0.0.1: passwords (SCRAM) are required from now on", hba)
    hba.write_text(PG_HBA)
    return True


def passfile_path(local_dir: Path) -> Path:
    """The embedded superuser's password file (libpq's format), readable by its owner only."""
    return local_dir / PASSFILE


def _superuser_password(settings: Settings) -> tuple[str, bool]:
    """The superuser's password from the password file, generated on first use; and whether it is new."""
    path = passfile_path(settings.local_dir)
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split(":", 4)
            if len(fields) == 5 and fields[3] == SUPERUSER:
                path.chmod(0o600)
                return fields[4], False
    password = secrets.token_urlsafe(32)  # letters, digits, - and _: nothing libpq's format must escape
    lines = "".join(f"{host}:*:*:{SUPERUSER}:{password}\n" for host in ("127.0.0.1", "localhost"))
    draft = path.with_name(f".{path.name}.new")
    draft.unlink(missing_ok=True)
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(lines)
    draft.replace(path)
    logger.info("generated the embedded superuser's password in %s (mode 0600)", path)
    return password, True


def _admin_conninfo(socket_dir: Path | str, port: int, dbname: str = "postgres") -> str:
    """The superuser over the unix socket (trusted: only the server's owner can enter its folder)."""
    return make_conninfo("", host=str(socket_dir), port=port, user=SUPERUSER, dbname=dbname)


def _secure(settings: Settings, running: Postmaster) -> None:
    """Passwords on every TCP connection, also of a server an earlier version started (its pg_hba.conf reloaded).

    The superuser gets its password (SCRAM-hashed here, never sent in clear) when it is
    new or not yet set, before a reloaded pg_hba.conf asks for it.
    """
    password, fresh = _superuser_password(settings)
    Path(running.socket_dir).chmod(0o700)
    upgraded = _upgrade_hba(settings)
    with psycopg.connect(_admin_conninfo(running.socket_dir, running.port), autocommit=True) as conn:
        unset = conn.execute("select rolpassword is null from pg_authid where rolname = %s", [SUPERUSER]).fetchone()[0]
        if fresh or unset:
            verifier = conn.pgconn.encrypt_password(password.encode(), SUPERUSER.encode(), b"scram-sha-256")
            conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(SUPERUSER), sql.Literal(verifier.decode())))
        if upgraded:
            conn.execute("select pg_reload_conf()")


def _remove_stale_lock(settings: Settings) -> None:
    """Remove the lock files left by a server that died, after its orphaned children exit."""
    data_dir = settings.embedded_data_dir
    postmaster = read_postmaster(data_dir)
    if postmaster is None or is_alive(postmaster.pid):
        return
    _end_orphans(data_dir)
    # Postgres would clear these itself, unless the dead postmaster is an unreaped zombie
    # (containers whose init does not reap): kill(pid, 0) still succeeds for a zombie.
    locks = _stale_lock_files(data_dir, postmaster)
    for lock in locks:
        lock.unlink(missing_ok=True)
    logger.warning(
        "removed stale lock %s: the server (pid %d) is gone, probably after a crash; starting afresh",
        " and ".join(map(str, locks)),
        postmaster.pid,
    )


def _stale_lock_files(data_dir: Path, postmaster: Postmaster) -> list[Path]:
    """postmaster.pid and the socket lock file, if it belongs to the same dead server."""
    locks = [data_dir / "postmaster.pid"]
    if postmaster.socket_dir and postmaster.port:
        socket_lock = Path(postmaster.socket_dir) / f".s.PGSQL.{postmaster.port}.lock"
        if socket_lock.exists() and socket_lock.read_text().split("\n", 1)[0].strip() == str(postmaster.pid):
            locks.append(socket_lock)
    return locks


def _orphans(data_dir: Path) -> list[psutil.Process]:
    """Postgres processes still working in data_dir (backends outliving a killed postmaster)."""
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        info = process.info
        alive = info["status"] != psutil.STATUS_ZOMBIE
        if info["name"] == "postgres" and info["cwd"] == str(data_dir) and alive:
            found.append(process)
    return found


def _end_orphans(data_dir: Path) -> None:
    """Wait for a dead postmaster's children to exit (they hold its shared memory), then kill the rest."""
    deadline = time.monotonic() + ORPHAN_WAIT_SECONDS
    while (orphans := _orphans(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in orphans:
        logger.warning("killing orphaned postgres process %d of %s", process.pid, data_dir)
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(orphans, timeout=5)


def _pg_ctl_start(settings: Settings, socket_dir: Path, account: pwd.struct_passwd | None) -> None:
    """Start the server and wait until it accepts connections."""
    port = settings.connection.port
    args = [
        "start", "-w", "-t", "60",
        "-D", str(settings.embedded_data_dir),
        "-l", str(log_path(settings)),
        "-o", server_options(port, socket_dir),
    ]  # fmt: skip
    result = _run_pg("pg_ctl", args, account)
    if result.returncode != 0:
        raise CustlabelError(
            f"PostgreSQL failed to start on 127.0.0.1:{port} (data in {settings.embedded_data_dir}).\n"
            f"{result.stderr.strip()}\nLast lines of {log_path(settings)}:\n{_log_tail(settings)}"
        )


def _log_tail(settings: Settings, lines: int = 15) -> str:
    """The end of the server log, to show why a start failed."""
    try:
        return "\n".join(log_path(settings).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _ensure_database(connection: Connection, socket_dir: str) -> None:
    """Create the configured database if it does not exist."""
    with psycopg.connect(_admin_conninfo(socket_dir, connection.port), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [connection.dbname]).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(connection.dbname)))


@contextmanager
def _lock(settings: Settings) -> Iterator[None]:
    """Serialize start and stop between processes sharing the same local folder."""
    settings.local_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.local_dir / "warehouse.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _check_external(connection: Connection) -> None:
    """Raise a clear error if the external server cannot be reached."""
    try:
        with psycopg.connect(connection.conninfo(), connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as error:
        raise CustlabelError(
            f"cannot connect to the external PostgreSQL at {connection.host}:{connection.port} "
            f"(database {connection.dbname!r}, user {connection.user!r}, from PGHOST/PGPORT or DATABASE_URL): "
            f"{str(error).strip()}"
        ) from error


def start(settings: Settings) -> Connection:
    """Start the embedded server if needed (idempotent) and return how to connect to it."""
    connection = settings.connection
    if not settings.embedded:
        _check_external(connection)
        return connection
    with _lock(settings):
        running = running_postmaster(settings)
        if running is None:
            _start_server(settings)
            running = running_postmaster(settings)
        elif running.port != connection.port:
            raise CustlabelError(
                f"the embedded PostgreSQL in {settings.embedded_data_dir} is already running on port "
                f"{running.port}, not {connection.port}: run `custlabel db stop` first, "
                f"or set CUSTLABEL_PG_PORT={running.port}"
            )
        _secure(settings, running)
        _ensure_database(connection, running.socket_dir)
    return connection


def _start_server(settings: Settings) -> None:
    """Recover from a crash if needed, create the cluster on first use, and start it."""
    port = settings.connection.port
    _remove_stale_lock(settings)
    if not port_is_free("127.0.0.1", port):
        raise CustlabelError(
            f"port {port} on 127.0.0.1 is already in use by another process: choose another port for the "
            f"embedded PostgreSQL with CUSTLABEL_PG_PORT, for example `export CUSTLABEL_PG_PORT={_next_free_port(port)}` "
            "(every later custlabel command must see the same value)"
        )
    account = _server_account()
    socket_dir = socket_dir_for(settings.local_dir, port)
    _prepare_folders(settings, socket_dir, account)
    _initdb(settings, account)
    _upgrade_hba(settings)  # before the start: a server of an earlier version never listens trusting
    _pg_ctl_start(settings, socket_dir, account)


def stop(settings: Settings) -> str:
    """Stop the embedded server with a fast shutdown (idempotent); say what happened."""
    if not settings.embedded:
        return _external_status(settings.connection) + ": nothing to stop"
    with _lock(settings):
        running = running_postmaster(settings)
        if running is None:
            return f"embedded PostgreSQL already stopped (data dir {settings.embedded_data_dir})"
        args = ["stop", "-w", "-m", "fast", "-D", str(settings.embedded_data_dir)]
        result = _run_pg("pg_ctl", args, _server_account())
        if result.returncode != 0:
            message = result.stderr.strip()
            raise CustlabelError(f"pg_ctl stop failed for {settings.embedded_data_dir}:\n{message}")
    return f"embedded PostgreSQL stopped (was pid {running.pid}, port {running.port})"


def _external_status(connection: Connection) -> str:
    """One line describing the external server."""
    where = f"{connection.host}:{connection.port}/{connection.dbname}"
    return f"external PostgreSQL at {where} (not managed by custlabel)"


def status(settings: Settings) -> str:
    """Whether the embedded server is running, with its pid, port and data folder."""
    if not settings.embedded:
        return _external_status(settings.connection)
    running = running_postmaster(settings)
    if running is None:
        return f"embedded PostgreSQL stopped (data dir {settings.embedded_data_dir})"
    return (
        f"embedded PostgreSQL running: pid {running.pid}, port {running.port}, "
        f"socket dir {running.socket_dir}, data dir {settings.embedded_data_dir}"
    )


def url(settings: Settings, show_password: bool = False) -> str:
    """The SQLAlchemy URL of the warehouse, its password masked (***) unless asked for."""
    full = settings.connection.sqlalchemy_url()
    return full if show_password else masking.mask(full, masking.settings_secrets(settings))


def run_action(settings: Settings, action: str, show_password: bool = False) -> str:
    """Carry out `custlabel db ACTION` and return what to print (`url` and `env` without passwords unless shown)."""
    if action == "start":
        start(settings)
        return status(settings)
    if action == "stop":
        return stop(settings)
    if action == "status":
        return status(settings)
    if action == "url":
        return url(settings, show_password)
    if action == "env":
        # The wheel's psql, for machines without a PostgreSQL client installed.
        return env_lines(settings.connection, bin_dir() if settings.embedded else None, show_password)
    raise CustlabelError(f"unknown db action {action!r}: expected start, stop, status, url or env")
