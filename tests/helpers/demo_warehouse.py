"""The demo worlds the suite builds: the night of the session's built warehouse, the master data the flow tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DEMO_END_DATE = "2026-06-30"


@dataclass(frozen=True)
class DemoData:
    """Parameters of generated demo master data; one set is generated once a session and cloned (`make_database`)."""

    customers: int
    days: int
    seed: int
    end_date: date

    @property
    def template(self) -> str:
        """The name of the database the data is generated into once, the template of every copy."""
        return f"demo_{self.customers}_{self.days}_{self.seed}_{self.end_date:%Y%m%d}"


def flow_demo(end_date: date) -> DemoData:
    """The flow tests' master data: 2,000 customers over 540 days (seed 5) up to end_date."""
    return DemoData(customers=2_000, days=540, seed=5, end_date=end_date)
