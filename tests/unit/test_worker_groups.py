"""Under pytest-xdist (`make test`), a module and a session world stay on one worker; fault figures reach the table."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_FOLDER = Path(__file__).parents[1]

CONFTEST = '''
import pytest

pytest_plugins = ["helpers.worker_groups", "helpers.fault_figures"]


@pytest.fixture(scope="session")
def built_warehouse(worker_id):
    return worker_id


@pytest.fixture(scope="module")
def module_world(worker_id):
    return worker_id


@pytest.fixture
def on_worker(request, worker_id):
    ran = request.config.rootpath / "ran"
    ran.mkdir(exist_ok=True)
    (ran / f"{request.node.path.stem}.{request.node.name}").write_text(worker_id)
'''

WORLD_TEST = '''
def test_{n}(built_warehouse, on_worker):
    pass
'''

MODULE_TESTS = '''
def test_one(module_world, on_worker):
    pass


def test_two(module_world, on_worker, figures):
    figures.append(("{name}", "figure", "value"))
'''


def ran_on(folder: Path) -> dict[str, str]:
    """Test (module.name) to the worker that ran it."""
    return {path.name: path.read_text() for path in (folder / "ran").iterdir()}


def test_a_module_and_a_session_world_each_run_on_one_worker_and_every_figure_is_reported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS_FOLDER))  # the workers import the plugins from tests/helpers
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**{f"test_world_{n}": WORLD_TEST.format(n=n) for n in range(4)})
    pytester.makepyfile(**{f"test_module_{n}": MODULE_TESTS.format(name=f"module {n}") for n in range(4)})
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    workers = ran_on(pytester.path)
    assert len(workers) == 12 and set(workers.values()) == {"gw0", "gw1"}
    assert len({workers[f"test_world_{n}.test_{n}"] for n in range(4)}) == 1
    for n in range(4):
        assert workers[f"test_module_{n}.test_one"] == workers[f"test_module_{n}.test_two"]
    result.stdout.fnmatch_lines(["*fault and load figures*"])
    assert sorted(line.split()[1] for line in result.outlines if line.startswith("module ")) == ["0", "1", "2", "3"]


def test_a_worker_sees_each_test_with_its_group_the_spark_tests_together_and_the_groups_that_build_worlds_first(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
import pytest

pytest_plugins = ["helpers.worker_groups"]


def pytest_configure(config):
    config.option.loadgroup = True  # what xdist sets in a worker for --dist loadgroup


@pytest.fixture(scope="session")
def flow_env():
    return {}
''')
    pytester.makeini("[pytest]\nmarkers =\n    slow: builds a whole world\n    spark: on a local Spark session\n")
    pytester.makepyfile(
        test_a_unit="def test_quick():\n    pass\n",
        test_b_flow="import pytest\n\npytestmark = pytest.mark.slow\n\ndef test_night(flow_env):\n    pass\n",
        test_c_own="import pytest\n\n@pytest.mark.xdist_group(\"alone\")\ndef test_alone():\n    pass\n",
        test_d_world="import pytest\n\n@pytest.mark.slow\ndef test_world():\n    pass\n\ndef test_after_the_world():\n    pass\n",
        test_e_spark="import pytest\n\npytestmark = [pytest.mark.spark, pytest.mark.slow]\n\ndef test_night():\n    pass\n",
        test_f_spark="import pytest\n\npytestmark = pytest.mark.spark\n\ndef test_features(flow_env):\n    pass\n",
    )
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:xdist")
    assert [line for line in result.outlines if "::" in line] == [
        "test_b_flow.py::test_night@flow_env",
        "test_d_world.py::test_world@test_d_world.py",
        "test_d_world.py::test_after_the_world@test_d_world.py",
        "test_e_spark.py::test_night@spark",
        "test_f_spark.py::test_features@spark",
        "test_a_unit.py::test_quick@test_a_unit.py",
        "test_c_own.py::test_alone@alone",
    ]
