"""The run record: one row per nightly run in `<target schema>.pipeline_runs`, kept up to date step by step.

The row is written when the run starts and after every step, so a run that dies
still shows how far it got. A retried flow run (same run id) updates its own row:
its steps list every attempt, and steps reused from an earlier attempt show as
"cached".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.types.json import Jsonb

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import db, locking

if TYPE_CHECKING:
    from custlabel.scoring.score import ScoreSummary

TABLE = "pipeline_runs"

DDL = """
create schema if not exists {schema};
create table if not exists {table} (
    run_id text primary key,
    run_name text,
    as_of_date date not null,
    target text not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    seconds double precision,
    outcome text not null check (outcome in ('running', 'succeeded', 'failed')),
    attempts integer not null default 1,
    parameters jsonb not null default '{{}}',
    steps jsonb not null default '[]',
    model_name text,
    model_version text,
    rows_labelled bigint,
    bad_rate double precision,
    summary jsonb,
    error text
);
comment on table {table} is 'One row per nightly run (custlabel nightly flow): steps with states and durations, model used, rows labelled, outcome.'
"""

UPSERT = """
insert into {table} (run_id, run_name, as_of_date, target, started_at, outcome, attempts, parameters, steps)
values (%(run_id)s, %(run_name)s, %(as_of_date)s, %(target)s, %(started_at)s, 'running', %(attempt)s, %(parameters)s, '[]')
on conflict (run_id) do update set
    outcome = 'running', attempts = excluded.attempts, finished_at = null, seconds = null, error = null
returning started_at, steps
"""


@dataclass
class Step:
    """One step of a run: its state as Prefect reports it (completed, cached, failed) and its duration."""

    name: str
    state: str
    seconds: float
    started_at: str
    attempt: int
    detail: str = ""


@dataclass
class RunRecord:
    """The row of one nightly run, and the steps recorded so far."""

    settings: Settings
    schema: str
    run_id: str
    run_name: str
    as_of_date: date
    target: str
    parameters: dict[str, Any]
    attempt: int = 1
    steps: list[Step] = field(default_factory=list)
    started_at: datetime | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, TABLE)

    def open(self) -> None:
        """Create the table if needed and write (or, on a retry, reopen) this run's row."""
        with db.connect(self.settings) as conn:
            conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(self.schema), table=self.table))
            started_at, steps = conn.execute(
                sql.SQL(UPSERT).format(table=self.table),
                {
                    "run_id": self.run_id,
                    "run_name": self.run_name,
                    "as_of_date": self.as_of_date,
                    "target": self.target,
                    "started_at": datetime.now(timezone.utc),
                    "attempt": self.attempt,
                    "parameters": Jsonb(self.parameters),
                },
            ).fetchone()
        self.started_at = started_at
        self.steps = [Step(**step) for step in steps]

    def _update(self, **columns: Any) -> None:
        columns["steps"] = Jsonb([asdict(step) for step in self.steps])
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in columns
        )
        with db.connect(self.settings) as conn:
            conn.execute(
                sql.SQL("update {} set {} where run_id = %(run_id)s").format(self.table, assignments),
                {**columns, "run_id": self.run_id},
            )

    def step(self, name: str, task: Callable[..., Any], *args: Any, required: bool = True, **kwargs: Any) -> Any:
        """Run a Prefect task, record its state and duration, and return its result.

        A failed required step raises the task's error (the run stops); a failed
        optional step is recorded, returns None, and fails the run at the end (see finish).
        """
        locking.check_held()
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        clock = time.perf_counter()
        state = task(*args, return_state=True, **kwargs)
        seconds = round(time.perf_counter() - clock, 2)
        result = state.result(raise_on_failure=False)
        failed = not state.is_completed()
        detail = (state.message or "") if failed else str(getattr(result, "detail", "") or "")
        self.steps.append(Step(name, state.name.lower(), seconds, started_at, self.attempt, detail[:2000]))
        self._update()
        if not failed:
            return result
        if required:
            state.result()  # raises the task's error
            raise StepsFailedError(f"{name} ended {state.name}: {detail}")
        self.failures.append(f"{name} failed: {detail}")
        return None

    def finish(self, summary: dict[str, Any], labels: ScoreSummary | None = None) -> None:
        """Close the row as succeeded, or as failed (and raise) when an optional step failed."""
        error = "; ".join(self.failures) or None
        self._close("failed" if error else "succeeded", labels, summary=Jsonb(json.loads(json.dumps(summary, default=str))),
                    error=error)
        if error:
            raise StepsFailedError(error)

    def fail(self, error: BaseException) -> None:
        """Close the row as failed with the error that stopped the run."""
        self._close("failed", error=f"{type(error).__name__}: {error}"[:4000])

    def _close(self, outcome: str, labels: ScoreSummary | None = None, **columns: Any) -> None:
        finished = datetime.now(timezone.utc)
        columns.update(outcome=outcome, finished_at=finished)
        if self.started_at is not None:
            columns["seconds"] = round((finished - self.started_at).total_seconds(), 2)
        if labels is not None:
            columns.update(
                model_name=",".join(sorted({part.model_name for part in labels.slices})),
                model_version=",".join(sorted({part.model_version for part in labels.slices})),
                rows_labelled=labels.customers,
                bad_rate=labels.bad_rate,
            )
        self._update(**columns)


class StepsFailedError(CustlabelError):
    """A step that does not stop the run failed; the run ends failed after the other steps."""


@contextmanager
def record(run: RunRecord) -> Iterator[RunRecord]:
    """Open the run's row; close it as failed with the error if the block raises."""
    run.open()
    try:
        yield run
    except StepsFailedError:
        raise
    except BaseException as error:
        run.fail(error)
        raise


def recent(settings: Settings, schema: str, limit: int = 30) -> list[dict[str, Any]]:
    """The latest runs of a target, newest first."""
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, schema, TABLE):
            return []
        cursor = conn.execute(
            sql.SQL(
                "select run_name, as_of_date, started_at, seconds, outcome, attempts, model_name, model_version,"
                " rows_labelled, bad_rate, error from {} order by started_at desc limit %s"
            ).format(sql.Identifier(schema, TABLE)),
            [limit],
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
