# custlabel: the commands the README names.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin
CUSTOMERS ?= 20000
DAYS ?= 730
# the demo on a local Spark session: fewer customers, Spark's fixed cost per query dominates on 2 cores
SPARK_CUSTOMERS ?= 3000
CRON ?= 0 2 * * *
# make test's parallel workers, each with an embedded Postgres of its own
TEST_WORKERS ?= 2

.PHONY: install demo demo-spark test test-fast faults bench serve db-start db-stop clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## make demo: install, start the embedded Postgres, generate master data, run the nightly flow once
demo: install
	$(BIN)/custlabel db start
	$(BIN)/custlabel demo-data --customers $(CUSTOMERS) --days $(DAYS)
	$(BIN)/custlabel nightly --auto-approve

## make demo-spark: night one on a local Spark session (Java 17): the demo master data as Spark tables, then the
## night's steps there (freshness, dbt build on the spark target, labels published, monitoring, alerts and report),
## under the lock, run record and release log kept in the embedded Postgres; the same world and night on Postgres
## in a database of their own (custlabel_spark_twin; make demo's stays), and the two nights compared (features,
## labels, scores; fails naming the bar not met)
demo-spark: install
	$(BIN)/custlabel db start
	$(BIN)/custlabel demo-data --target spark --customers $(SPARK_CUSTOMERS) --days $(DAYS)
	$(BIN)/custlabel nightly --target spark
	$(BIN)/custlabel postgres-twin --customers $(SPARK_CUSTOMERS) --days $(DAYS)
	$(BIN)/custlabel compare-engines --postgres-database custlabel_spark_twin

## make serve: serve nightly-customer-labels/nightly on a cron (UTC); trigger it with prefect deployment run
serve: install
	$(BIN)/custlabel db start
	$(BIN)/custlabel serve --cron '$(CRON)'

## make test: the whole suite (unit, integration on a real Postgres, flows), on TEST_WORKERS workers
test: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=20

## make test-fast: the tests that need no database (not marked integration), in under 2 minutes
test-fast: install
	$(BIN)/pytest -q -m "not integration and not spark" -n $(TEST_WORKERS) --dist loadgroup

## make faults: the load and fault tests alone (also part of make test), with their table of figures
faults: install
	$(BIN)/pytest -q -m faults

## make bench: figures at scale (1,000,000 customers); prints, never fails on a target
bench: install
	$(BIN)/custlabel db start
	$(BIN)/custlabel bench

db-start: install
	$(BIN)/custlabel db start

db-stop:
	$(BIN)/custlabel db stop

clean:
	rm -rf target dbt_packages logs
