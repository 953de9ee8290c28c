"""The `custlabel` command: a thin layer over the stage modules.

Each handler imports its stage when it runs: importing them all costs about 8 s
(MLflow, scikit-learn, Prefect, orbital) against 0.04 s for this module, and
`custlabel db start` or `--help` should not wait for that.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

from custlabel.errors import CustlabelError

DEFAULT_BENCH_SECTIONS = "warehouse,training,validation,scoring,load,monitoring"
I_MEAN_DATABASE_HELP = (
    "required off the embedded server: the name of the database to overwrite, which must be the one connected to"
)


def _db(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.warehouse import embedded_postgres

    print(embedded_postgres.run_action(get_settings(), args.action, show_password=args.show_password))


def _demo_data(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.demo import loader

    if args.target == "spark":
        from custlabel.demo import spark_master_data
        from custlabel.warehouse import spark_session

        settings = get_settings()
        spark = spark_session.local_session(settings)
        print(spark_master_data.replace_master_data(
            spark, settings, args.customers, args.days, args.seed,
            date.fromisoformat(args.end_date) if args.end_date else date.today(),
        ))
        return
    summary = loader.generate_and_load(
        get_settings(), customers=args.customers, days=args.days, seed=args.seed, end_date=args.end_date,
        i_mean_database=args.i_mean_database, purchase_only=args.purchase_only,
    )
    print(summary)


def _load(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.warehouse import load

    files = {name: Path(path) for name, path in (("customers", args.customers), ("sales", args.sales)) if path}
    print(load.load(get_settings(), files, mode=args.mode, i_mean_database=args.i_mean_database, conflicts=args.conflicts))


def _example(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.demo import pagila
    from custlabel.warehouse import dbt_runner

    print(pagila.run(
        get_settings(), dataset_dir=Path(args.dataset) if args.dataset else None, as_of_date=args.as_of or pagila.NIGHT,
        target=args.target,
        dbt_vars=dbt_runner.parse_vars(args.vars), i_mean_database=args.i_mean_database,
    ))


def _dbt(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.warehouse import dbt_runner

    dbt_runner.run(get_settings(), args.dbt_args, target=args.target, as_of_date=args.as_of)


def _target_settings(target: str | None):
    """The settings, with the target given on the command line (default CUSTLABEL_TARGET)."""
    from custlabel.config import get_settings, schema_for

    settings = get_settings()
    if target:
        schema_for(target)
        settings = replace(settings, target=target)
    return settings


def _train(args: argparse.Namespace) -> None:
    from custlabel.release import registration
    from custlabel.training import model_search

    settings = _target_settings(args.target)
    chosen = {"train_rows_per_date": args.train_rows_per_date, "search_iterations": args.search_iterations, "n_jobs": args.n_jobs}
    config = replace(model_search.sized(settings.search), **{key: value for key, value in chosen.items() if value is not None})
    released = registration.train_and_register(settings, config=config, alias=args.alias or None)
    print("\n".join(released.summary_lines()))


def _approve(args: argparse.Namespace) -> None:
    from custlabel.release import approval

    print(approval.approve(_target_settings(args.target), args.version, args.by, args.note))


def _reject(args: argparse.Namespace) -> None:
    from custlabel.release import approval

    print(approval.reject(_target_settings(args.target), args.version, args.by, args.note))


def _promote(args: argparse.Namespace) -> None:
    from custlabel.release import approval

    print(approval.promote(_target_settings(args.target), args.version, args.by))


def _baseline(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.release import registration

    print("\n".join(registration.record_baseline(get_settings())))


def _eda(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.training import eda

    print(eda.report(get_settings(), output=args.output))


def _score(args: argparse.Namespace) -> None:
    from custlabel.release import lifecycle
    from custlabel.scoring import score

    log = logging.getLogger("custlabel")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("custlabel: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    # The target's schema and its own aliases: a test scoring never reads prod's champion.
    settings = _target_settings(args.target)
    request = score.ScoreRequest(
        schema=settings.schema,
        as_of=args.as_of,
        alias=args.alias,
        engine=args.engine,
        canary_percent=args.canary_percent,
        canary_alias=args.canary_alias or ("canary" if settings.target == "prod" else "challenger"),
        force=args.force,
        max_label_rate_change=args.max_label_rate_change,
        max_bad_share=score.acceptance_bound(settings),
    )
    score.check_prod_aliases(settings, request)
    lifecycle.reconcile(settings)
    with score.stop_on_sigterm():
        summary = score.score(settings, request)
    print(summary)


def _validate(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.release import validate_version
    from custlabel.training import acceptance

    settings = get_settings()
    criteria = acceptance.read_file(Path(args.acceptance)) if args.acceptance else None
    result = validate_version.validate(settings, args.version, criteria=criteria, as_of_date=args.as_of, build_warehouse=not args.no_build)
    print("\n".join(result.summary_lines()))
    return 0 if result.passed else 1


def _status(args: argparse.Namespace) -> None:
    from custlabel.release import lifecycle, release_policy, rollout

    settings = _target_settings(args.target)
    repaired = lifecycle.reconcile(settings)
    state = rollout.read_state(settings, release_policy.load(settings=settings), repaired)
    print(f"{settings.model_name}, target {settings.target}")
    print("\n".join(state.lines()))


def _grants(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.scoring import grants

    prompt = getpass.getpass if sys.stdin.isatty() else None
    print("\n".join(grants.grant_bi_access(
        get_settings(), target=args.target, role=args.role, reset_password=args.reset_password, prompt=prompt,
    )))


def _bench(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.devtools.benchmarks import run_all
    from custlabel.devtools.benchmarks.curves import CurvePlan
    from custlabel.devtools.benchmarks.spark_curves import SparkPlan

    if args.target == "spark":
        postgres_only = [option for option, given in (
            ("--sections", args.sections), ("--history-days", args.history_days), ("--changed-scales", args.changed_scales)
        ) if given]
        spark_plan = SparkPlan.from_options(args.sizes, args.spark_cores, args.days, postgres_only)
        run_all(get_settings(), [], args.days, set(), args.i_mean_database, None, ["custlabel", *sys.argv[1:]], spark_plan)
        return
    if args.spark_cores:
        raise CustlabelError("--spark-cores sets the cores of a local Spark session: give --target spark with it")
    plan = None
    if args.sizes or args.history_days or args.changed_scales:
        base = min(args.sizes or args.customers)
        plan = CurvePlan(args.sizes or [], args.history_days or [], args.changed_scales or [], base, args.days)
    sections = args.sections if args.sections is not None else ("" if plan else DEFAULT_BENCH_SECTIONS)
    run_all(
        get_settings(), args.customers, args.days, set(filter(None, sections.split(","))), args.i_mean_database,
        plan, ["custlabel", *sys.argv[1:]],
    )


def _numbers(kind: type) -> Callable[[str], list]:
    """An argparse type: a comma-separated list of numbers above 0, e.g. 100000,300000."""
    def parse(text: str) -> list:
        try:
            numbers = [kind(item) for item in text.split(",") if item]
        except ValueError:
            numbers = []
        if not numbers or min(numbers) <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers above 0, e.g. 100000,300000")
        return numbers
    return parse


def _nightly(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.nightly import serving
    from custlabel.warehouse import dbt_runner

    print(serving.run_once(
        get_settings(), as_of_date=args.as_of, target=args.target, retrain=args.retrain, auto_approve=args.auto_approve or None,
        dbt_vars=dbt_runner.parse_vars(args.vars), skip_training=args.skip_training,
    ))


def _postgres_twin(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.demo import postgres_twin
    from custlabel.nightly.night_steps import last_complete_night
    from custlabel.warehouse import dbt_runner

    settings = get_settings()
    print("\n".join(postgres_twin.run(
        settings, customers=args.customers, days=args.days, seed=args.seed,
        end_date=date.fromisoformat(args.end_date) if args.end_date else date.today(),
        as_of_date=args.as_of or last_complete_night(settings.timezone),
        dbt_vars=dbt_runner.parse_vars(args.vars), i_mean_database=args.i_mean_database,
    )))


def _compare_engines(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.monitoring import engine_agreement
    from custlabel.warehouse import spark_session

    settings = get_settings()
    spark = spark_session.local_session(settings)
    as_of_date = args.as_of or engine_agreement.newest_spark_night(spark)
    postgres = settings
    if args.postgres_database:
        postgres = replace(settings, connection=replace(settings.connection, dbname=args.postgres_database))
    agreement = engine_agreement.compare(
        as_of_date, engine_agreement.read_postgres(postgres, as_of_date), engine_agreement.read_spark(spark, as_of_date)
    )
    print("\n".join(agreement.lines()))
    if agreement.failures():
        raise CustlabelError("Spark's night disagrees with Postgres's: " + "; ".join(agreement.failures()))


def _serve(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.nightly import serving

    serving.serve(get_settings(), cron=args.cron, timezone=args.timezone, target=args.target, prefect_port=args.prefect_port)


def _monitor(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.monitoring import headline_figures

    settings = get_settings()
    print(headline_figures.report(settings, target=args.target, as_of_date=args.as_of, nights=args.nights))
    if args.open:
        print(f"report: {headline_figures.open_report(settings, target=args.target, as_of_date=args.as_of)}")


def _rollback(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.release import rollout

    done = rollout.rollback(get_settings(), args.target, args.to, args.by, args.reason, args.next_night)
    print("\n".join(done.lines()))


def _simulate(args: argparse.Namespace) -> None:
    from custlabel.config import get_settings
    from custlabel.demo import simulation

    for line in simulation.run(
        get_settings(), nights=args.nights, days_per_night=args.days_per_night, target=args.target, seed=args.seed,
        auto_approve=not args.no_auto_approve, i_mean_database=args.i_mean_database,
        inject_drift_on=args.inject_drift, inject_bad_challenger_on=args.inject_bad_challenger,
    ):
        print(line, flush=True)


def _night(text: str) -> date:
    """argparse type of a night: a date written YYYY-MM-DD."""
    from custlabel.warehouse.dbt_runner import iso_day

    try:
        return date.fromisoformat(iso_day(text, "--as-of"))
    except CustlabelError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _add_target(parser: argparse.ArgumentParser, spark: bool = False) -> None:
    """--target: dev, test or prod on Postgres, and spark (a local Spark session) for the commands that run there."""
    targets = ["dev", "test", "prod", *(["spark"] if spark else [])]
    parser.add_argument("--target", choices=targets, default=None, help="default: CUSTLABEL_TARGET")


def _version_command(sub, name: str, handler, help_text: str, by_help: str) -> argparse.ArgumentParser:
    """A command on one registered version, recorded with who ran it: approve, reject, promote."""
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("version")
    parser.add_argument("--by", required=True, help=by_help)
    _add_target(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custlabel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the embedded PostgreSQL in .local/")
    db.add_argument("action", choices=["start", "stop", "status", "url", "env"])
    db.add_argument("--show-password", action="store_true", help="print the password in `url` and `env` (masked: ***)")
    db.set_defaults(handler=_db)

    demo = sub.add_parser("demo-data", help="generate demo master data into master_data.*")
    demo.add_argument("--customers", type=int, default=20_000)
    demo.add_argument("--days", type=int, default=730)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--end-date", help="last day of the generated history (default: today)")
    demo.add_argument("--i-mean-database", metavar="NAME", help=I_MEAN_DATABASE_HELP)
    demo.add_argument(
        "--purchase-only", action="store_true",
        help="a purchase log only: no invoices, returns, cancellations or channels (due_at, channel null; paid when sold)",
    )
    demo.add_argument("--target", choices=["spark"], default=None,
                      help="spark: write the master data as Spark tables (Parquet) of the local Spark session instead")
    demo.set_defaults(handler=_demo_data)

    load = sub.add_parser("load", help="load customers and sales files (CSV or Parquet) into master_data.*")
    load.add_argument("--customers", help="customers file (.csv or .parquet)")
    load.add_argument("--sales", help="sales file (.csv or .parquet)")
    load.add_argument("--mode", choices=["replace", "append"], default="replace",
                      help="replace: the tables become the files (a full extract); append: add the rows")
    load.add_argument("--conflicts", choices=["refuse", "quarantine"], default="refuse",
                      help="rows with the same id and updated_at but different values: refuse the load (default), "
                           "or load them for the quarantine (the build sets them aside)")
    load.add_argument("--i-mean-database", default=None, help="required on a server other than the embedded one: its database name")
    load.set_defaults(handler=_load)

    example = sub.add_parser("example", help="worked examples on real schemas: pagila (load, map by views, run a night)")
    example.add_argument("name", choices=["pagila"])
    example.add_argument("--dataset", default=None, help="a pagila folder, dumps plain or gzipped (default: examples/pagila, shipped in the repo)")
    example.add_argument("--as-of", type=date.fromisoformat, default=None, help="the night to label (default 2005-08-23, the last of its rentals)")
    _add_target(example)
    example.add_argument("--vars", default="", help="more dbt vars, e.g. '{outcome_window_days: 21}'")
    example.add_argument("--i-mean-database", default=None, help="required on a server other than the embedded one: its database name")
    example.set_defaults(handler=_example)

    dbt = sub.add_parser("dbt", help="run dbt (build, test, snapshot, ...) against the warehouse")
    dbt.add_argument("--target", default=None, help="a target of profiles.yml (default: CUSTLABEL_TARGET)")
    dbt.add_argument("--as-of", type=_night, default=None, help="the night to build, YYYY-MM-DD (default: the last complete night)")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(handler=_dbt)

    train = sub.add_parser("train", help="search candidates on training_set, register the best version")
    train.add_argument("--alias", default="challenger",
                       help="challenger only: champion and canary are reached through validate, approve and the canary")
    train.add_argument("--train-rows-per-date", type=int, help="sampling cap per as_of_date (default 10000)")
    train.add_argument("--search-iterations", type=int, help="settings tried per candidate (default CUSTLABEL_SEARCH_ITERATIONS, else 4)")
    train.add_argument("--n-jobs", type=int, help="parallel fits (default CUSTLABEL_SEARCH_JOBS, else 2)")
    _add_target(train)
    train.set_defaults(handler=_train)

    approve = _version_command(sub, "approve", _approve,
                               "approve a validated version (business owner); it becomes eligible for champion",
                               "who approves (recorded on the version and in model_releases)")
    approve.add_argument("--note", default="", help="why, for the release log")
    reject = _version_command(sub, "reject", _reject, "reject a validated version (business owner), with the reason",
                              "who rejects")
    reject.add_argument("--note", required=True, help="why (required)")
    _version_command(sub, "promote", _promote, "make an approved version the champion (ML engineer)", "who promotes")

    baseline = sub.add_parser("baseline", help="judge the SQL rule baseline on the newest matured night, record it")
    baseline.set_defaults(handler=_baseline)

    eda = sub.add_parser("eda", help="HTML analysis report of training_set, logged to MLflow")
    eda.add_argument("--output", default=None, help="where to write the HTML (default: .local/reports/eda.html)")
    eda.set_defaults(handler=_eda)

    score = sub.add_parser("score", help="label every eligible customer into customer_labels (atomic swap)")
    score.add_argument("--alias", default="champion", help="model alias to score with (rule baseline when unset; "
                       "prod: champion only)")
    score.add_argument("--as-of", type=date.fromisoformat, default=None, help="re-score another night from customer_features, YYYY-MM-DD (default: tonight's customer_features_current)")
    _add_target(score)
    score.add_argument("--engine", choices=["python", "sql", "auto"], default="auto", help="sql scores inside Postgres")
    score.add_argument("--canary-percent", type=float, default=0.0, help="share of customers (stable hash) for the canary")
    score.add_argument("--canary-alias", default=None, help="model alias labelling the canary slice "
                       "(default: canary in prod, challenger elsewhere)")
    score.add_argument("--max-label-rate-change", type=float, default=0.10, help="allowed move of the bad rate vs the previous night")
    score.add_argument("--force", action="store_true", help="publish even when the bad rate moved more than allowed")
    score.set_defaults(handler=_score)

    status = sub.add_parser("status", help="the release state: who labels, what the product waits for, who can unblock it")
    _add_target(status)
    status.set_defaults(handler=_status)

    validate = sub.add_parser("validate", help="deploy a version to the test environment and run every release gate (moves no alias)")
    validate.add_argument("version", help="the registered version of the model to validate")
    validate.add_argument("--as-of", default=None, help="the night dbt builds the test target for, YYYY-MM-DD (default: the last complete night)")
    validate.add_argument("--acceptance", default=None, help="an acceptance file to judge by (default: acceptance.yml)")
    validate.add_argument("--no-build", action="store_true", help="reuse analytics_test as built (re-validation)")
    validate.set_defaults(handler=_validate)

    grants = sub.add_parser("grants", help="create the read-only BI role and its grants")
    _add_target(grants)
    grants.add_argument("--role", default="custlabel_bi")
    grants.add_argument(
        "--reset-password", action="store_true",
        help="set a new password on an existing role (from CUSTLABEL_BI_PASSWORD, else asked; the embedded demo's by default)",
    )
    grants.set_defaults(handler=_grants)

    bench = sub.add_parser("bench", help="print speed, memory and quality figures at scale")
    bench.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    bench.add_argument("--days", type=int, default=540, help="history length (540 days: about 20 sales per customer)")
    bench.add_argument(
        "--sections", default=None,
        help=f"any of warehouse,training,validation,scoring,load,monitoring,purchase_only,prefect_dbt (default {DEFAULT_BENCH_SECTIONS}; "
        "none when a curve is asked for)",
    )
    bench.add_argument("--sizes", type=_numbers(int), help="curve: nightly build against customers, e.g. 100000,300000,1000000")
    bench.add_argument(
        "--history-days", type=_numbers(int),
        help="curve: nightly build against history length at the smallest size, e.g. 180,540,1080",
    )
    bench.add_argument(
        "--changed-scales", type=_numbers(float),
        help="curve: nightly build against the share of changed rows, the simulation's rates times each, e.g. 0.5,2,4",
    )
    bench.add_argument(
        "--target", choices=["spark"], default=None,
        help="spark: the night on a local Spark session against --sizes and --spark-cores (default: Postgres)",
    )
    bench.add_argument(
        "--spark-cores", type=_numbers(int),
        help="with --target spark: the executor cores of each night (CUSTLABEL_SPARK_CORES), e.g. 1,2,4 (the default)",
    )
    bench.add_argument(
        "--i-mean-database", default=None,
        help="required on a server other than the embedded one: custlabel_bench, the database bench creates and fills",
    )
    bench.set_defaults(handler=_bench)


    nightly = sub.add_parser("nightly", help="run the nightly flow once, here (Prefect local mode unless PREFECT_API_URL is set)")
    nightly.add_argument("--as-of", type=date.fromisoformat, default=None, help="the night to label, YYYY-MM-DD (default: the last complete night, yesterday in CUSTLABEL_TIMEZONE)")
    _add_target(nightly, spark=True)
    nightly.add_argument("--retrain", action="store_true", help="train a new challenger even when a model exists")
    nightly.add_argument("--skip-training", action="store_true", help="train nothing tonight, even when a trigger fires "
                         "(the triggers are measured and recorded; a night with a short window)")
    nightly.add_argument("--auto-approve", action="store_true", help="approve a trained version that passed every gate (demo, tests; CUSTLABEL_AUTO_APPROVE=1 too)")
    nightly.add_argument("--vars", default="", help="dbt vars for every dbt step, as `dbt build --vars` takes them, "
                         "e.g. '{outcome_window_days: 30, freshness: warn}'")
    nightly.set_defaults(handler=_nightly)

    twin = sub.add_parser("postgres-twin", help="the Spark demo's master data and night on Postgres, in a database of "
                          "their own (custlabel_spark_twin), for compare-engines")
    twin.add_argument("--customers", type=int, default=3_000)
    twin.add_argument("--days", type=int, default=730)
    twin.add_argument("--seed", type=int, default=7)
    twin.add_argument("--end-date", help="last day of the generated history (default: today)")
    twin.add_argument("--as-of", type=date.fromisoformat, default=None, help="the night (default: the last complete night)")
    twin.add_argument("--vars", default="", help="dbt vars for every dbt step, as for nightly")
    twin.add_argument("--i-mean-database", metavar="NAME", help="required off the embedded server: custlabel_spark_twin")
    twin.set_defaults(handler=_postgres_twin)

    compare = sub.add_parser("compare-engines", help="one night's features, labels and scores on Spark against Postgres's;"
                             " fails naming the bar not met")
    compare.add_argument("--as-of", type=date.fromisoformat, default=None, help="the night (default: the newest on Spark)")
    compare.add_argument("--postgres-database", metavar="NAME", default=None,
                         help="the Postgres database of the night (default: the configured one; make demo-spark's: custlabel_spark_twin)")
    compare.set_defaults(handler=_compare_engines)

    serve = sub.add_parser("serve", help="serve the deployment nightly-customer-labels/nightly on a cron schedule")
    serve.add_argument("--cron", default="0 2 * * *", help="when the nightly run starts (default: 02:00)")
    serve.add_argument("--timezone", default=None, help="time zone of the cron schedule (default: CUSTLABEL_TIMEZONE, else UTC)")
    _add_target(serve, spark=True)
    serve.add_argument("--prefect-port", type=int, default=4200, help="port of the local Prefect server (without PREFECT_API_URL)")
    serve.set_defaults(handler=_serve)

    monitor = sub.add_parser("monitor", help="monitoring figures of a night, recent label rates, realized precision, runs")
    _add_target(monitor)
    monitor.add_argument("--as-of", type=date.fromisoformat, default=None, help="the night (default: the newest built)")
    monitor.add_argument("--nights", type=int, default=30, help="how many nights of history to show")
    monitor.add_argument("--open", action="store_true", help="write the HTML report of the night and open it in a browser")
    monitor.set_defaults(handler=_monitor)

    rollback = sub.add_parser("rollback", help="make the previous champion (or --to VERSION) label again, with who and why")
    rollback.add_argument("--to", metavar="VERSION", default=None, help="the version to go back to (default: previous-champion)")
    rollback.add_argument("--by", required=True, metavar="NAME", help="who rolls back (recorded)")
    rollback.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded)")
    rollback.add_argument("--next-night", action="store_true", help="leave tonight's labels; the version labels from the next run")
    _add_target(rollback)
    rollback.set_defaults(handler=_rollback)

    simulate = sub.add_parser("simulate", help="advance the demo master data night by night, running the nightly flow each night")
    simulate.add_argument("--nights", type=int, default=5)
    simulate.add_argument("--days-per-night", type=int, default=1, help="days of master data each simulated night adds")
    _add_target(simulate)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--no-auto-approve", action="store_true", help="leave trained versions as challengers")
    simulate.add_argument("--i-mean-database", metavar="NAME", help=I_MEAN_DATABASE_HELP)
    simulate.add_argument("--inject-drift", type=int, metavar="NIGHT", help="night (1 = first) whose data loses the last 60 days of payments of 20%% of the customers")
    simulate.add_argument("--inject-bad-challenger", type=int, metavar="NIGHT",
                          help="night before whose run a wrongly thresholded copy of the champion is approved")
    simulate.set_defaults(handler=_simulate)

    return parser


def main(argv: list[str] | None = None) -> int:
    from custlabel import masking
    from custlabel.config import get_settings

    args = build_parser().parse_args(argv)
    try:
        masking.protect_logs(get_settings())
        return args.handler(args) or 0
    except CustlabelError as error:
        print(f"custlabel: error: {masking.mask(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
