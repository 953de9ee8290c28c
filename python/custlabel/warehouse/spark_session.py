"""The local Spark session of the profile's `spark` target, for Python that writes or reads Spark tables."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import yaml

from custlabel.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_TARGET = "spark"
# The JVM's log configuration that the profile's session reads (errors only: the night's log is custlabel's).
LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")
# dbt-spark sets it on every session it opens (connections.py): the same here, so both read SQL alike.
ADAPTER_PARAMETERS = {"spark.sql.ansi.enabled": "false"}


def profile_env(settings: Settings) -> dict[str, str]:
    """What the `spark` target of profiles.yml.example reads that custlabel sets: where the session keeps its
    tables, and its log configuration."""
    return {"CUSTLABEL_LOCAL_DIR": str(settings.local_dir), "CUSTLABEL_SPARK_LOG_CONFIG": str(LOG_CONFIG)}


def session_parameters(settings: Settings, env: dict[str, str] | None = None) -> dict[str, str]:
    """The `spark` target's server_side_parameters in profiles.yml.example, rendered as dbt renders them."""
    env = {**(os.environ if env is None else env), **profile_env(settings)}
    profile = yaml.safe_load((settings.project_dir / "profiles.yml.example").read_text())
    parameters = profile["custlabel"]["outputs"][SPARK_TARGET]["server_side_parameters"]

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(f"profiles.yml.example reads {name}, which is not set")
        return default

    render = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered = {name: render.from_string(str(value)).render(env_var=env_var) for name, value in parameters.items()}
    return {**rendered, **ADAPTER_PARAMETERS}


def local_session(settings: Settings) -> SparkSession:
    """The process's Spark session (started with the profile's parameters, or the one dbt already started)."""
    from pyspark.sql import SparkSession

    # Python workers (scoring's batches) run this interpreter, which has custlabel and the model's libraries.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    # pyspark warns on every conversion that it is not tested with pandas 3 (custlabel is): noise for the operator.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

    builder = SparkSession.builder.enableHiveSupport()
    for name, value in session_parameters(settings).items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")  # Spark's own warnings are for its developers, not the night's log
    return session
