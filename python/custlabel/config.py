"""Settings from the environment: the only module that reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2]
EMBEDDED_DEFAULT_PORT = 55432
TARGET_SCHEMAS = {"dev": "analytics_dev", "test": "analytics_test", "prod": "analytics"}


@dataclass(frozen=True)
class Connection:
    """Where the warehouse is, in the terms libpq, SQLAlchemy and dbt each want."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def sqlalchemy_url(self) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.dbname}"

    def conninfo(self) -> str:
        parts = {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{key}={value}" for key, value in parts.items())

    def pg_env(self) -> dict[str, str]:
        """PG* variables for dbt's profile and for psql."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.dbname,
        }


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
    # The nights' time zone: a night is a calendar day there (dbt reads the same variable).
    timezone: str = "UTC"

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


def _connection_from_env(env: dict[str, str], embedded_port: int) -> tuple[bool, Connection]:
    url = env.get("DATABASE_URL")
    if url:
        parsed = urlparse(url)
        return False, Connection(
            host=parsed.hostname or "localhost",
            port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            dbname=(parsed.path or "/postgres").lstrip("/") or "postgres",
        )
    if env.get("PGHOST") or env.get("PGPORT"):
        return False, Connection(
            host=env.get("PGHOST", "localhost"),
            port=int(env.get("PGPORT", "5432")),
            user=env.get("PGUSER", "postgres"),
            password=env.get("PGPASSWORD", ""),
            dbname=env.get("PGDATABASE", "postgres"),
        )
    return True, Connection("127.0.0.1", embedded_port, "postgres", "", "custlabel")


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings; PG* or DATABASE_URL select an external Postgres, else the embedded one."""
    env = dict(os.environ if env is None else env)
    project_dir = Path(env.get("CUSTLABEL_HOME", DEFAULT_PROJECT_DIR)).resolve()
    local_dir = Path(env.get("CUSTLABEL_LOCAL_DIR", project_dir / ".local")).resolve()
    embedded, connection = _connection_from_env(
        env, int(env.get("CUSTLABEL_PG_PORT", EMBEDDED_DEFAULT_PORT))
    )
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
        timezone=env.get("CUSTLABEL_TIMEZONE", "UTC"),
    )
