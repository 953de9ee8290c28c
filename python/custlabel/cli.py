"""The `custlabel` command: a thin layer over the stage modules."""

from __future__ import annotations

import argparse
import sys

from custlabel.errors import CustlabelError


def _db(args: argparse.Namespace) -> None:
    from custlabel import warehouse

    print(warehouse.run_action(args.action))


def _demo_data(args: argparse.Namespace) -> None:
    from custlabel import demo

    summary = demo.generate_and_load(
        customers=args.customers, days=args.days, seed=args.seed, end_date=args.end_date
    )
    print(summary)


def _dbt(args: argparse.Namespace) -> None:
    from custlabel import dbt

    dbt.run(args.dbt_args, target=args.target, as_of_date=args.as_of)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custlabel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the embedded PostgreSQL in .local/")
    db.add_argument("action", choices=["start", "stop", "status", "url", "env"])
    db.set_defaults(handler=_db)

    demo = sub.add_parser("demo-data", help="generate demo master data into master_data.*")
    demo.add_argument("--customers", type=int, default=20_000)
    demo.add_argument("--days", type=int, default=730)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--end-date", help="last day of the generated history (default: today)")
    demo.set_defaults(handler=_demo_data)

    dbt = sub.add_parser("dbt", help="run dbt (build, test, snapshot, ...) against the warehouse")
    dbt.add_argument("--target", default=None, help="dev | test | prod")
    dbt.add_argument("--as-of", default=None, help="the night to build, YYYY-MM-DD (default: today)")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(handler=_dbt)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except CustlabelError as error:
        print(f"custlabel: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
