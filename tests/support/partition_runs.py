"""Partition keys as Airflow 3.3.2 handles them: the keys asset events carry, which DAGs an
event queues, what the REST API answers (as an admin of the SimpleAuthManager, on the
in-process FastAPI app), and ``dag.test()`` running a partitioned run.

``dag.test()`` always makes a manual run with a logical date and no key. Inside
``partitioned_run(key)`` it runs the run the scheduler makes for ``key`` instead (scheduled,
no logical date, no data interval, ``partition_key`` and ``partition_date``); a second time,
the same run cleared, as a rerun from the UI or ``clearDagRuns`` does. Inside
``existing_run`` it runs a run Airflow made (over REST, by a backfill). Call
``dag.test(logical_date=None)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock


def emitted(asset: str) -> list[tuple[str | None, dict[str, Any]]]:
    """The events of ``asset`` in the metadata DB, oldest first: ``(partition_key, extra)``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.partition_key, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == asset)
            .order_by(AssetEvent.id)
        )
        return [(key, dict(extra or {})) for key, extra in session.execute(query)]


def _sync_dags(session: Any) -> None:
    """The bundle's DAGs and their asset references in the DB, as ``dag.test()`` writes them."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db(session=session)
    session.commit()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version, session=session)
    session.commit()


def queued_by(asset: str, partition_key: str | None) -> set[str]:
    """The DAGs (unpaused) that one event of ``asset`` with ``partition_key`` queues, through
    Airflow's own ``AssetManager.register_asset_change``; rolled back afterwards."""
    from airflow.assets.manager import AssetManager
    from airflow.models import DagModel
    from airflow.models.asset import (
        AssetDagRunQueue,
        AssetModel,
        AssetPartitionDagRun,
        DagScheduleAssetReference,
    )
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    with create_session() as session:
        _sync_dags(session)
        model = session.scalar(select(AssetModel).where(AssetModel.name == asset))
        assert model is not None, f"no DAG in the bundle mentions the asset {asset!r}"
        consumers = select(DagScheduleAssetReference.dag_id).where(
            DagScheduleAssetReference.asset_id == model.id
        )
        session.execute(
            update(DagModel).where(DagModel.dag_id.in_(consumers)).values(is_paused=False)
        )
        AssetManager.register_asset_change(
            asset=model, extra={"day": partition_key}, partition_key=partition_key, session=session
        )
        session.flush()
        queued = set(
            session.scalars(
                select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == model.id)
            )
        )
        queued |= set(session.scalars(select(AssetPartitionDagRun.target_dag_id)))
        session.rollback()
    return queued


def _admin_headers() -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username="admin", role="admin")
    return {"Authorization": f"Bearer {get_auth_manager().generate_jwt(user)}"}


def api(method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
    """One call of the public REST API (``/api/v2/...``) on the in-process app, the DAGs
    synced first: its status code and its JSON answer."""
    from airflow.api_fastapi.app import create_app
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    with create_session() as session:
        _sync_dags(session)  # the API acts on the serialized DAGs
    client = TestClient(create_app("core"))
    response = client.request(method, path, json=body, headers=_admin_headers())
    return response.status_code, response.json()


def rest_trigger(dag_id: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """``POST /api/v2/dags/{dag_id}/dagRuns`` with ``body``: the status code and the answer.
    A probe: a run it created is deleted."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    status, answer = api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
    if status == 200:
        with create_session() as session:
            session.execute(delete(DagRun).where(DagRun.run_id == answer["dag_run_id"]))
    return status, answer


def _running(session: Any, run: Any, dag: Any) -> Any:
    """``run`` set running, bound to the scheduler's ``dag`` (``dag.test()`` runs it)."""
    from airflow.utils.state import DagRunState

    run.dag = dag
    run.state = DagRunState.RUNNING
    session.commit()
    return run


@contextmanager
def partitioned_run(key: str) -> Iterator[None]:
    """``dag.test(logical_date=None)`` runs the scheduled run of partition ``key`` (its tasks
    cleared first when it ran before: a rerun)."""
    from airflow.models import dagrun
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    def scheduled_run(*, dag: Any, session: Any, **_: Any) -> Any:
        partition_date = dag.timetable.resolve_partition_date(key)
        run_after = partition_date + timedelta(days=1)  # run_offset=-1: due when the day ends
        found = session.scalar(
            select(dagrun.DagRun).where(
                dagrun.DagRun.dag_id == dag.dag_id,
                dagrun.DagRun.partition_key == key,
                dagrun.DagRun.run_type == DagRunType.SCHEDULED,
            )
        )
        if found is not None:
            dag.clear(run_id=found.run_id, dag_run_state=DagRunState.QUEUED, session=session)
            return _running(session, found, dag)
        run = dag.create_dagrun(
            run_id=dag.timetable.generate_run_id(
                run_type=DagRunType.SCHEDULED, run_after=run_after, data_interval=None
            ),
            logical_date=None,
            data_interval=None,
            run_after=run_after,
            run_type=DagRunType.SCHEDULED,
            triggered_by=DagRunTriggeredByType.TIMETABLE,
            state=DagRunState.RUNNING,
            partition_key=key,
            partition_date=partition_date,
            session=session,
        )
        session.commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", scheduled_run):
        yield


@contextmanager
def existing_run(dag_id: str, run_id: str) -> Iterator[None]:
    """``dag.test(logical_date=None)`` runs the run ``run_id`` that Airflow already made
    (triggered over REST, or created by a backfill) instead of making its own."""
    from airflow.models import dagrun
    from sqlalchemy import select

    def the_run(*, dag: Any, session: Any, **_: Any) -> Any:
        query = select(dagrun.DagRun).where(
            dagrun.DagRun.dag_id == dag_id, dagrun.DagRun.run_id == run_id
        )
        return _running(session, session.scalar(query), dag)

    with mock.patch.object(dagrun, "get_or_create_dagrun", the_run):
        yield
