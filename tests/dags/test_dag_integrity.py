"""Every file in dags/ parses, follows the house conventions, and keeps parse time cheap.

Collection with DagBag needs no metadata DB. The heavy-import rule is checked twice: statically
(the import statements a reader sees) and dynamically (what importing the file really loads,
which also catches a heavy import hidden in mlops_airflow or another helper).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.rglob("*.py") if "__pycache__" not in p.parts)
HEAVY = frozenset(
    {
        "pandas",
        "numpy",
        "sklearn",
        "mlflow",
        "feast",
        "great_expectations",
        "evidently",
        "duckdb",
        "pyarrow",
        "boto3",
        "s3fs",
        "scipy",
        "redis",
    }
)
WALL_CLOCK_CALLS = frozenset({"now", "utcnow", "today", "days_ago"})
MIN_RETRIES = 2  # every task touches storage or a service

by_file = pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: str(p.relative_to(DAGS_DIR)))


@pytest.fixture(scope="module")
def dag_bags():
    """The dags folder parsed twice, to tell a fixed start_date from one computed at parse time."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR)), DagBag(dag_folder=str(DAGS_DIR))


def dags_in(bag, path: Path) -> list:
    return [d for d in bag.dags.values() if Path(d.fileloc).resolve() == path.resolve()]


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@by_file
def test_imports_without_errors(dag_bags, path: Path) -> None:
    bag, _ = dag_bags
    errors = {k: v for k, v in bag.import_errors.items() if (DAGS_DIR / k).resolve() == path}
    assert not errors, "\n".join(errors.values())


@by_file
def test_one_dag_per_file_named_after_it(dag_bags, path: Path) -> None:
    bag, _ = dag_bags
    assert [d.dag_id for d in dags_in(bag, path)] == [path.stem]


@by_file
def test_dag_declares_tags_owner_and_docs(dag_bags, path: Path) -> None:
    bag, _ = dag_bags
    for dag in dags_in(bag, path):
        assert dag.tags, f"{dag.dag_id}: no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag.dag_id}: no doc_md"
        owners = {task.owner for task in dag.tasks}
        assert owners and not owners & {"airflow", ""}, f"{dag.dag_id}: owners {owners}"


@by_file
def test_every_task_retries(dag_bags, path: Path) -> None:
    bag, _ = dag_bags
    for dag in dags_in(bag, path):
        few = {t.task_id: t.retries for t in dag.tasks if (t.retries or 0) < MIN_RETRIES}
        assert not few, f"{dag.dag_id}: tasks with retries < {MIN_RETRIES}: {few}"


def unbounded(dag) -> list[str]:
    """What in ``dag`` may run forever or be cut short: the DAG without ``dagrun_timeout``, a
    task without ``execution_timeout``, a sensor whose own ``timeout`` (its bound: an
    ``execution_timeout`` would cut a deferred wait short) outlasts the run's, so the run
    would be killed before the sensor names what never came."""
    from airflow.sdk import BaseSensorOperator

    if not dag.dagrun_timeout:
        return [f"{dag.dag_id}: no dagrun_timeout"] + [
            f"{t.task_id}: no execution_timeout"
            for t in dag.tasks
            if not isinstance(t, BaseSensorOperator) and not t.execution_timeout
        ]
    found = []
    for task in dag.tasks:
        if isinstance(task, BaseSensorOperator):
            if task.timeout >= dag.dagrun_timeout.total_seconds():
                found.append(f"{task.task_id}: sensor timeout not within dagrun_timeout")
        elif not task.execution_timeout:
            found.append(f"{task.task_id}: no execution_timeout")
    return found


@by_file
def test_every_task_and_run_is_bounded(dag_bags, path: Path) -> None:
    bag, _ = dag_bags
    for dag in dags_in(bag, path):
        assert unbounded(dag) == []


def test_an_unbounded_dag_is_reported() -> None:
    """The check above bites: a DAG and a task without their bounds are named, and so is a
    sensor that would wait longer than its run may last."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import DAG

    def build(**run_timeout) -> DAG:
        with DAG("unbounded", schedule=None, **run_timeout) as dag:
            EmptyOperator(task_id="work")
            TimeDeltaSensor(task_id="wait", delta=timedelta(hours=1), timeout=7200)
            EmptyOperator(task_id="bounded", execution_timeout=timedelta(minutes=1))
        return dag

    assert unbounded(build()) == ["unbounded: no dagrun_timeout", "work: no execution_timeout"]
    assert unbounded(build(dagrun_timeout=timedelta(hours=1))) == [
        "work: no execution_timeout",
        "wait: sensor timeout not within dagrun_timeout",
    ]


def unalerted(dag) -> list[str]:
    """What in ``dag`` may fail without anyone hearing of it: the DAG without the run-level
    ``FailureNotifier``, a task without the task-level one (its last try)."""
    from mlops_airflow.alerts import FailureNotifier

    def notifies(callbacks, run: bool) -> bool:
        found = callbacks if isinstance(callbacks, list) else [callbacks]
        return any(isinstance(c, FailureNotifier) and c.run is run for c in found)

    found = [] if notifies(dag.on_failure_callback, True) else [f"{dag.dag_id}: no run alert"]
    return found + [
        f"{task.task_id}: no failure alert"
        for task in dag.tasks
        if not notifies(task.on_failure_callback, False)
    ]


@by_file
def test_every_failure_alerts(dag_bags, path: Path) -> None:
    bag, _ = dag_bags
    for dag in dags_in(bag, path):
        assert unalerted(dag) == []


def test_a_dag_that_fails_silently_is_reported() -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from mlops_airflow.alerts import FailureNotifier

    with DAG(
        "silent", schedule=None, default_args={"on_failure_callback": FailureNotifier()}
    ) as silent:
        EmptyOperator(task_id="alerts")
        EmptyOperator(task_id="silent", on_failure_callback=[])
        EmptyOperator(task_id="run_level", on_failure_callback=FailureNotifier(run=True))
    assert unalerted(silent) == [
        "silent: no run alert",
        "silent: no failure alert",
        "run_level: no failure alert",
    ]


@pytest.mark.parametrize(
    ("dag_id", "name", "interval"),
    [
        ("transactions_daily", "features_online", timedelta(hours=8)),
        ("model_monitoring", "day_judged", timedelta(hours=24)),
    ],
)
def test_the_daily_dags_declare_their_deadline(monkeypatch, dag_id, name, interval) -> None:
    """Counted from the run's queued time (the end of its data interval for a scheduled run),
    calling back, on the executor, a function that imports by its path. With the deadlines
    the tests turn off (tests/conftest.py) back at their defaults."""
    from importlib import import_module

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DeadlineReference, SyncCallback

    from mlops_airflow.alerts import deadline_missed

    monkeypatch.delenv("MLOPS_FEATURES_DEADLINE_H")
    monkeypatch.delenv("MLOPS_MONITORING_DEADLINE_H")
    bag = DagBag(dag_folder=str(DAGS_DIR / f"{dag_id}.py"))
    [alert] = bag.dags[dag_id].deadline
    assert (alert.name, alert.reference) == (name, DeadlineReference.DAGRUN_QUEUED_AT)
    assert alert.interval == interval
    assert isinstance(alert.callback, SyncCallback)
    module, name = alert.callback.path.rsplit(".", 1)  # as the executor's callback imports it
    assert getattr(import_module(module), name) is deadline_missed
    assert set(alert.callback.kwargs) == {"deadline"}


def test_a_deadline_turned_off_is_none(dag_bags) -> None:
    bag, _ = dag_bags
    assert bag.dags["transactions_daily"].deadline is None


@by_file
def test_start_date_is_fixed(dag_bags, path: Path) -> None:
    first, second = dag_bags
    again = {d.dag_id: d.start_date for d in dags_in(second, path)}
    for dag in dags_in(first, path):
        assert dag.start_date is not None, f"{dag.dag_id}: no start_date"
        assert dag.start_date.tzinfo is not None, f"{dag.dag_id}: naive start_date"
        assert again[dag.dag_id] == dag.start_date, f"{dag.dag_id}: start_date moves per parse"


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


@by_file
def test_schedule_is_explicit(path: Path) -> None:
    """Airflow's default (None) is indistinguishable from a deliberate None once parsed."""
    tree = parsed(path)
    calls = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) in {"dag", "DAG"}
    ]
    bare = [
        d
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef)
        for d in n.decorator_list
        if _name(d) == "dag"
    ]
    assert calls or bare, "no @dag / DAG(...) found"
    missing = [c.lineno for c in calls if "schedule" not in {k.arg for k in c.keywords}]
    missing += [d.lineno for d in bare]
    assert not missing, f"DAG without schedule= at lines {missing}"


@by_file
def test_no_wall_clock_in_dag_files(path: Path) -> None:
    """Time comes from the data interval; now() in a DAG file makes a new DAG version per parse."""
    found = [
        (n.lineno, _name(n.func))
        for n in ast.walk(parsed(path))
        if isinstance(n, ast.Call) and _name(n.func) in WALL_CLOCK_CALLS
    ]
    assert not found, f"wall-clock calls: {found}"


def module_level_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Imports that run when the module is imported: not in functions, not under TYPE_CHECKING."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and _name(node.test) == "TYPE_CHECKING":
            stack.extend(node.orelse)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        else:
            stack.extend(ast.iter_child_nodes(node))


@by_file
def test_no_heavy_import_statements_at_module_level(path: Path) -> None:
    heavy = [
        (line, m) for line, m in module_level_imports(parsed(path)) if m.split(".")[0] in HEAVY
    ]
    assert not heavy, f"import inside the task instead: {sorted(heavy)}"


# Runs in a fresh interpreter: the framework first (its own imports are not the DAG's fault),
# then the DAG file the way the dag-processor loads it; prints the heavy modules it added.
_PROBE = """
import importlib.util, json, sys
heavy = set(json.loads(sys.argv[2]))
def loaded():
    return {name.split(".")[0] for name in sys.modules} & heavy
import airflow.sdk, pendulum
before = loaded()
sys.path.insert(0, sys.argv[3])
spec = importlib.util.spec_from_file_location("dag_under_probe", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(loaded() - before)))
"""


@pytest.fixture(scope="module")
def heavy_modules_loaded() -> dict[Path, list[str] | str]:
    """Per DAG file, the heavy modules its import loads (or the probe's error output)."""

    def probe(path: Path) -> list[str] | str:
        argv = [sys.executable, "-c", _PROBE, str(path), json.dumps(sorted(HEAVY)), str(DAGS_DIR)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ)
        if done.returncode:
            return done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(DAG_FILES, pool.map(probe, DAG_FILES), strict=True))


@by_file
def test_importing_the_file_loads_no_heavy_module(heavy_modules_loaded, path: Path) -> None:
    result = heavy_modules_loaded[path]
    assert isinstance(result, list), f"probe failed:\n{result}"
    assert not result, f"importing {path.name} loads {result}; import them inside tasks"


def test_the_asset_graph_shows_the_whole_loop(dag_bags) -> None:
    """The edges of the UI's two asset graphs: scheduling (a DAG's schedule and its tasks'
    outlets, as serialized for the UI) and data (a task's inlets, which link the daily data to
    monitoring). No DAG triggers another: every link of the loop is an asset."""
    from airflow.serialization.serialized_objects import DagSerialization

    bag, _ = dag_bags
    edges, triggers = set(), []
    for dag_id, dag in bag.dags.items():
        for dep in DagSerialization.serialize_dag(dag)["dag_dependencies"]:
            if dep["dependency_type"] != "asset":
                triggers.append((dag_id, dep["dependency_type"], dep["target"]))
            elif dep["source"] == "asset":
                edges.add((f"asset:{dep['label']}", dep["target"]))
            else:
                edges.add((dep["source"], f"asset:{dep['label']}"))
        for task in dag.tasks:
            edges |= {(f"asset:{inlet.name}", dag_id) for inlet in task.inlets}
    loop = [
        ("transactions_daily", "asset:validated_transactions"),
        ("asset:validated_transactions", "model_monitoring"),
        ("transactions_daily", "asset:scored_predictions"),
        ("asset:scored_predictions", "model_monitoring"),
        ("model_monitoring", "asset:retrain_request"),
        ("asset:retrain_request", "model_training"),
        ("model_training", "asset:candidate_model"),
        ("asset:candidate_model", "model_deployment"),
        ("model_monitoring", "asset:rollback_request"),
        ("asset:rollback_request", "model_rollback"),
    ]
    assert [edge for edge in loop if edge not in edges] == []
    assert triggers == []
