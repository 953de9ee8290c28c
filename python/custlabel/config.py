"""Settings from the environment: the only module that reads os.environ."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.engine import URL

from custlabel.errors import CustlabelError

DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2]
EMBEDDED_DEFAULT_PORT = 55432
# The embedded superuser's password file under local_dir (libpq's format, mode 0600), written at first start.
PASSFILE = "pgpass"
# spark: the same project on a local Spark session (profiles.yml.example), `custlabel nightly --target spark`;
# spark_test: the test environment of a version trained on Spark (`custlabel validate` of a spark night's version).
TARGET_SCHEMAS = {
    "dev": "analytics_dev", "test": "analytics_test", "prod": "analytics",
    "spark": "analytics_spark", "spark_test": "analytics_spark_test",
}
# Each target's test environment, where `custlabel validate` deploys a version trained on it.
TEST_TARGETS = {"spark": "spark_test"}
# A Postgres duration ("90s", "15min", "2h", "0" for none): safe inside a libpq options string.
DURATION = re.compile(r"^\d+\s*(us|ms|s|min|h|d)?$")
# libpq keywords of a DATABASE_URL query string and the variables that carry them to dbt and psql.
LIBPQ_VARIABLES = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslcompression": "PGSSLCOMPRESSION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "requirepeer": "PGREQUIREPEER",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "application_name": "PGAPPNAME",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "hostaddr": "PGHOSTADDR",
    "channel_binding": "PGCHANNELBINDING",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}
# Keepalive keywords have no libpq variable: dbt's profile reads keepalives_idle itself.
KEEPALIVE_KEYWORDS = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"}


def duration(name: str, value: str) -> str:
    """A Postgres duration setting, checked (it goes into every session's options)."""
    value = value.strip()
    if not DURATION.match(value):
        raise CustlabelError(f"{name}={value!r} is not a duration such as 30s, 15min or 2h (0 for none)")
    return value.replace(" ", "")


@dataclass(frozen=True)
class Timeouts:
    """Limits every warehouse session gets, so that a lost server or a hung statement cannot hang a night."""

    connect_seconds: int = 10
    statement: str = "2h"
    idle_in_transaction: str = "30min"
    keepalives_idle_seconds: int = 60
    keepalives_interval_seconds: int = 10
    keepalives_count: int = 6
    # The operator's own PGOPTIONS: kept after ours, so a setting named in both is the operator's.
    operator_options: str = ""

    def session_options(self) -> str:
        """The `-c` flags of libpq's options keyword: ours, then the operator's PGOPTIONS."""
        ours = f"-c statement_timeout={self.statement} -c idle_in_transaction_session_timeout={self.idle_in_transaction}"
        return " ".join(filter(None, [ours, self.operator_options.strip()]))

    def keepalive_parameters(self) -> dict[str, str]:
        return {
            "keepalives": "1",
            "keepalives_idle": str(self.keepalives_idle_seconds),
            "keepalives_interval": str(self.keepalives_interval_seconds),
            "keepalives_count": str(self.keepalives_count),
        }


@dataclass(frozen=True)
class Connection:
    """Where the warehouse is, in the terms libpq, SQLAlchemy and dbt each want.

    Args:
        params: further libpq keywords, e.g. sslmode from DATABASE_URL's query string.
    """

    host: str
    port: int
    user: str
    password: str
    dbname: str
    params: tuple[tuple[str, str], ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Every session's TimeZone: dates become day boundaries there (CUSTLABEL_TIMEZONE).
    timezone: str = "UTC"

    def parameters(self) -> dict[str, str]:
        """Every libpq keyword of a session: address, credentials, timeouts, keepalives, options."""
        extra = dict(self.params)
        options = " ".join(filter(None, [
            extra.pop("options", ""), self.timeouts.session_options(), f"-c TimeZone={self.timezone}",
        ]))
        parameters = {"host": self.host, "port": str(self.port), "user": self.user, "dbname": self.dbname}
        if self.password:
            parameters["password"] = self.password
        return {
            "connect_timeout": str(self.timeouts.connect_seconds),
            **self.timeouts.keepalive_parameters(),
            **extra,
            **parameters,
            "options": options,
        }

    def conninfo(self) -> str:
        """A libpq connection string with every value quoted."""
        return make_conninfo("", **self.parameters())

    def sqlalchemy_url(self) -> str:
        """The SQLAlchemy URL (psycopg driver) of the address, DATABASE_URL's parameters in its query string."""
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password or None,
            host=self.host,
            port=self.port,
            database=self.dbname,
            query=dict(self.params),
        ).render_as_string(hide_password=False)

    def pg_env(self) -> dict[str, str]:
        """libpq variables (PG*) of the address, the credentials and DATABASE_URL's parameters, for psql."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.dbname,
        }
        for keyword, value in self.params:
            if keyword in LIBPQ_VARIABLES:
                env[LIBPQ_VARIABLES[keyword]] = value
        return env

    def session_env(self) -> dict[str, str]:
        """pg_env() plus the session limits and time zone, for dbt's profile: the same sessions as conninfo()."""
        parameters = self.parameters()
        return {
            **self.pg_env(),
            "PGTZ": self.timezone,
            "PGOPTIONS": parameters["options"],
            "PGCONNECT_TIMEOUT": parameters["connect_timeout"],
            "CUSTLABEL_PG_KEEPALIVES_IDLE": parameters["keepalives_idle"],
        }


@dataclass(frozen=True)
class BiRole:
    """The read-only BI role's password (when given) and the limits of its sessions."""

    password: str | None = None
    statement_timeout: str = "10min"
    idle_in_transaction_timeout: str = "5min"
    connection_limit: int = 20


@dataclass(frozen=True)
class SwapWait:
    """How the nightly swap waits for BI readers of the label table: short tries, a pause between, a bound."""

    lock_timeout: str = "2s"
    pause_seconds: float = 3.0
    max_wait_seconds: float = 1200.0


@dataclass(frozen=True)
class StepTimeouts:
    """How long a step of the nightly run and each child process may take before it is stopped (seconds).

    Generous: they stop a hung step, so that it releases the run's lock, not a slow one.
    """

    step_seconds: float = 3 * 3600
    train_seconds: float = 6 * 3600
    validate_seconds: float = 6 * 3600
    smoke_seconds: float = 1800
    scoring_child_seconds: float = 3 * 3600


@dataclass(frozen=True)
class SearchSize:
    """The nightly training's search, where it differs from TrainConfig's defaults (None: the default).

    Smaller for tests and quick demos: CUSTLABEL_SEARCH_ITERATIONS, CUSTLABEL_SEARCH_FOLDS,
    CUSTLABEL_SEARCH_JOBS, CUSTLABEL_SEARCH_CANDIDATES (model families, comma separated).
    """

    search_iterations: int | None = None
    max_folds: int | None = None
    n_jobs: int | None = None
    candidates: tuple[str, ...] | None = None

    def overrides(self) -> dict[str, object]:
        """The TrainConfig fields set here."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    local_dir: Path
    embedded: bool
    connection: Connection
    mlflow_tracking_uri: str
    mlflow_artifact_root: Path
    model_name: str
    target: str
    prefect_api_url: str | None
    # The reviewed files (CUSTLABEL_ACCEPTANCE_FILE, CUSTLABEL_RELEASE_FILE, CUSTLABEL_ALERTS_FILE; default the repository's).
    acceptance_file: Path
    release_file: Path
    alerts_file: Path
    # The nights' time zone: a night is a calendar day there (dbt reads the same variable).
    timezone: str = "UTC"
    bi_role: BiRole = field(default_factory=BiRole)
    swap_wait: SwapWait = field(default_factory=SwapWait)
    lock_heartbeat_seconds: float = 30.0
    step_timeouts: StepTimeouts = field(default_factory=StepTimeouts)
    search: SearchSize = field(default_factory=SearchSize)
    # CUSTLABEL_AUTO_APPROVE (`custlabel nightly --auto-approve`): a night started in this process approves a version
    # that passed every gate. A served deployment refuses it (`custlabel serve` stops, its runs never approve).
    auto_approve: bool = False

    @property
    def schema(self) -> str:
        return schema_for(self.target)

    @property
    def embedded_data_dir(self) -> Path:
        return self.local_dir / "pgdata"

    @property
    def dbt_profiles_dir(self) -> Path:
        return self.local_dir / "dbt"


def schema_for(target: str) -> str:
    """The analytics schema a dbt target writes to."""
    if target not in TARGET_SCHEMAS:
        raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGET_SCHEMAS)}")
    return TARGET_SCHEMAS[target]


def dbt_target_dir(project_dir: Path) -> Path:
    """Where dbt writes manifest.json and run_results.json: dbt's own DBT_TARGET_PATH, else target/ (in the project)."""
    return project_dir / os.environ.get("DBT_TARGET_PATH", "target")


def is_spark(target: str) -> bool:
    """Whether a target's warehouse is on Spark (its marts, training rows and monitoring)."""
    return target in ("spark", "spark_test")


def monitoring_schema(schema: str) -> str:
    """Where dbt builds the monitoring marts for a target schema."""
    return f"{schema}_monitoring"


def _url_connection(url: str, timeouts: Timeouts) -> Connection:
    """A DATABASE_URL parsed by libpq itself: percent-decoding and its query string (sslmode, ...) kept."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+")[0] not in {"postgresql", "postgres"}:
        named = f"has the scheme {scheme!r}" if separator else "is not a URL"
        raise CustlabelError(
            f"DATABASE_URL {named}: custlabel needs a PostgreSQL URL such as"
            " postgresql://user:password@host:5432/dbname?sslmode=require"
        )
    try:
        parts = conninfo_to_dict(f"postgresql://{rest}")
    except Exception as error:  # psycopg.ProgrammingError names the bad part
        raise CustlabelError(f"DATABASE_URL cannot be read: {error}") from error
    address = {key: str(parts.pop(key)) for key in ("host", "port", "user", "password", "dbname") if key in parts}
    if "," in address.get("host", "") or "," in address.get("port", ""):
        raise CustlabelError(
            f"DATABASE_URL names several servers ({address.get('host', '')}): custlabel writes to one, and its nightly"
            " lock must live there; name the primary alone (postgresql://user:password@primary:5432/dbname)"
        )
    if not address.get("port", "5432").isdigit():
        raise CustlabelError(f"DATABASE_URL's port {address['port']!r} is not a number")
    unsupported = set(parts) - set(LIBPQ_VARIABLES) - KEEPALIVE_KEYWORDS
    if unsupported:
        raise CustlabelError(f"DATABASE_URL parameters not supported here: {', '.join(sorted(unsupported))}")
    if "connect_timeout" in parts:
        timeouts = replace(timeouts, connect_seconds=int(parts.pop("connect_timeout")))
    return Connection(
        host=address.get("host", "localhost"),
        port=int(address.get("port", 5432)),
        user=address.get("user", "postgres"),
        password=address.get("password", ""),
        dbname=address.get("dbname", "postgres"),
        params=tuple(sorted((key, str(value)) for key, value in parts.items())),
        timeouts=timeouts,
    )


def time_zone(name: str) -> str:
    """A time zone name Python and Postgres both know (CUSTLABEL_TIMEZONE), checked."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise CustlabelError(f"unknown time zone {name!r} (CUSTLABEL_TIMEZONE): use a name such as 'Europe/Rome'") from error
    return name


def _timeouts_from_env(env: dict[str, str]) -> Timeouts:
    defaults = Timeouts()
    # An operator's PGCONNECT_TIMEOUT is the default of ours (libpq would never see it: we always pass one).
    connect_default = _integer(env, "PGCONNECT_TIMEOUT", defaults.connect_seconds)
    return Timeouts(
        connect_seconds=_integer(env, "CUSTLABEL_PG_CONNECT_TIMEOUT", connect_default),
        operator_options=env.get("PGOPTIONS", ""),
        statement=duration("CUSTLABEL_PG_STATEMENT_TIMEOUT", env.get("CUSTLABEL_PG_STATEMENT_TIMEOUT", defaults.statement)),
        idle_in_transaction=duration(
            "CUSTLABEL_PG_IDLE_IN_TRANSACTION_TIMEOUT",
            env.get("CUSTLABEL_PG_IDLE_IN_TRANSACTION_TIMEOUT", defaults.idle_in_transaction),
        ),
        keepalives_idle_seconds=_integer(env, "CUSTLABEL_PG_KEEPALIVES_IDLE", defaults.keepalives_idle_seconds),
    )


def _integer(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise CustlabelError(f"{name}={value!r} is not a whole number")
    return int(value)


def _number(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise CustlabelError(f"{name}={value!r} is not a number of seconds")
    return number


def _connection_from_env(env: dict[str, str], embedded_port: int, local_dir: Path) -> tuple[bool, Connection]:
    timeouts = _timeouts_from_env(env)
    url = env.get("DATABASE_URL")
    if url:
        return False, _url_connection(url, timeouts)
    if env.get("PGHOST") or env.get("PGPORT"):
        return False, Connection(
            host=env.get("PGHOST", "localhost"),
            port=int(env.get("PGPORT", "5432")),
            user=env.get("PGUSER", "postgres"),
            password=env.get("PGPASSWORD", ""),
            dbname=env.get("PGDATABASE", "postgres"),
            params=(("passfile", env["PGPASSFILE"]),) if env.get("PGPASSFILE") else (),
            timeouts=timeouts,
        )
    passfile = (("passfile", str(local_dir / PASSFILE)),)
    return True, Connection("127.0.0.1", embedded_port, "postgres", "", "custlabel", passfile, timeouts=timeouts)


def _bi_role_from_env(env: dict[str, str]) -> BiRole:
    defaults = BiRole()
    return BiRole(
        password=env.get("CUSTLABEL_BI_PASSWORD") or None,
        statement_timeout=duration(
            "CUSTLABEL_BI_STATEMENT_TIMEOUT", env.get("CUSTLABEL_BI_STATEMENT_TIMEOUT", defaults.statement_timeout)
        ),
        idle_in_transaction_timeout=defaults.idle_in_transaction_timeout,
        connection_limit=_integer(env, "CUSTLABEL_BI_CONNECTION_LIMIT", defaults.connection_limit),
    )


def _swap_wait_from_env(env: dict[str, str]) -> SwapWait:
    defaults = SwapWait()
    return SwapWait(
        lock_timeout=duration("CUSTLABEL_SWAP_LOCK_TIMEOUT", env.get("CUSTLABEL_SWAP_LOCK_TIMEOUT", defaults.lock_timeout)),
        pause_seconds=_number(env, "CUSTLABEL_SWAP_PAUSE_SECONDS", defaults.pause_seconds),
        max_wait_seconds=_number(env, "CUSTLABEL_SWAP_MAX_WAIT_SECONDS", defaults.max_wait_seconds),
    )


def _step_timeouts_from_env(env: dict[str, str]) -> StepTimeouts:
    defaults = StepTimeouts()
    return StepTimeouts(
        step_seconds=_positive(env, "CUSTLABEL_STEP_TIMEOUT_SECONDS", defaults.step_seconds),
        train_seconds=_positive(env, "CUSTLABEL_TRAIN_TIMEOUT_SECONDS", defaults.train_seconds),
        validate_seconds=_positive(env, "CUSTLABEL_VALIDATE_TIMEOUT_SECONDS", defaults.validate_seconds),
        smoke_seconds=_positive(env, "CUSTLABEL_SMOKE_TIMEOUT_SECONDS", defaults.smoke_seconds),
        scoring_child_seconds=_positive(env, "CUSTLABEL_SCORING_CHILD_TIMEOUT_SECONDS", defaults.scoring_child_seconds),
    )


def _positive(env: dict[str, str], name: str, default: float) -> float:
    seconds = _number(env, name, default)
    if seconds <= 0:
        raise CustlabelError(f"{name}={env[name]!r}: a timeout must be a positive number of seconds")
    return seconds


def _search_from_env(env: dict[str, str]) -> SearchSize:
    def whole(name: str) -> int | None:
        if name not in env:
            return None
        if _integer(env, name, 0) < 1:
            raise CustlabelError(f"{name}={env[name]!r}: the search needs at least 1")
        return int(env[name])

    candidates = env.get("CUSTLABEL_SEARCH_CANDIDATES")
    return SearchSize(
        search_iterations=whole("CUSTLABEL_SEARCH_ITERATIONS"),
        max_folds=whole("CUSTLABEL_SEARCH_FOLDS"),
        n_jobs=whole("CUSTLABEL_SEARCH_JOBS"),
        candidates=tuple(name.strip() for name in candidates.split(",") if name.strip()) if candidates else None,
    )


def _switch(env: dict[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value not in {"", "0", "1", "false", "true", "no", "yes"}:
        raise CustlabelError(f"{name}={env[name]!r} is not a switch: use 1 or 0")
    return value in {"1", "true", "yes"}


def _reviewed_file(env: dict[str, str], name: str, default: Path) -> Path:
    return Path(env[name]).resolve() if env.get(name) else default


@contextmanager
def exported(variables: dict[str, str]) -> Iterator[None]:
    """The variables set in the environment for the block: a flow run started here reads its settings there."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings; PG* or DATABASE_URL select an external Postgres, else the embedded one."""
    env = dict(os.environ if env is None else env)
    project_dir = Path(env.get("CUSTLABEL_HOME", DEFAULT_PROJECT_DIR)).resolve()
    local_dir = Path(env.get("CUSTLABEL_LOCAL_DIR", project_dir / ".local")).resolve()
    timezone = time_zone(env.get("CUSTLABEL_TIMEZONE", "UTC"))
    if env.get("PGTZ", timezone) != timezone:
        # libpq sends PGTZ after the connection's options: every session would run in PGTZ's zone.
        raise CustlabelError(
            f"PGTZ={env['PGTZ']!r} differs from CUSTLABEL_TIMEZONE={timezone!r}: sessions would cut days in "
            f"{env['PGTZ']}; unset PGTZ or set both to the same zone (`custlabel db env` exports PGTZ)"
        )
    embedded, connection = _connection_from_env(
        env, int(env.get("CUSTLABEL_PG_PORT", EMBEDDED_DEFAULT_PORT)), local_dir
    )
    connection = replace(connection, timezone=timezone)
    mlflow_dir = local_dir / "mlflow"
    target = env.get("CUSTLABEL_TARGET", "prod")
    schema_for(target)
    return Settings(
        project_dir=project_dir,
        local_dir=local_dir,
        embedded=embedded,
        connection=connection,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_dir / 'mlflow.db'}"),
        mlflow_artifact_root=mlflow_dir / "artifacts",
        model_name=env.get("CUSTLABEL_MODEL_NAME", "customer-labels"),
        target=target,
        prefect_api_url=env.get("PREFECT_API_URL"),
        acceptance_file=_reviewed_file(env, "CUSTLABEL_ACCEPTANCE_FILE", project_dir / "acceptance.yml"),
        release_file=_reviewed_file(env, "CUSTLABEL_RELEASE_FILE", project_dir / "release.yml"),
        alerts_file=_reviewed_file(env, "CUSTLABEL_ALERTS_FILE", project_dir / "alerts.yml"),
        timezone=timezone,
        bi_role=_bi_role_from_env(env),
        swap_wait=_swap_wait_from_env(env),
        lock_heartbeat_seconds=_number(env, "CUSTLABEL_LOCK_HEARTBEAT_SECONDS", 30.0),
        step_timeouts=_step_timeouts_from_env(env),
        search=_search_from_env(env),
        auto_approve=_switch(env, "CUSTLABEL_AUTO_APPROVE"),
    )
