"""Partition keys as Airflow 3.3.2 handles them: the keys asset events carry, which DAGs an
event queues, and what the REST API answers to a trigger (as an admin of the SimpleAuthManager,
on the in-process FastAPI app)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


def rest_trigger(dag_id: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """``POST /api/v2/dags/{dag_id}/dagRuns`` with ``body`` on the in-process API (the DAGs
    synced first): the status code and the answer. A probe: a run it created is deleted."""
    from airflow.api_fastapi.app import create_app
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient
    from sqlalchemy import delete

    with create_session() as session:
        _sync_dags(session)  # the API triggers the serialized DAG
    client = TestClient(create_app("core"))
    path = f"/api/v2/dags/{dag_id}/dagRuns"
    response = client.post(path, json=dict(body), headers=_admin_headers())
    answer = response.json()
    if response.status_code == 200:
        with create_session() as session:
            session.execute(delete(DagRun).where(DagRun.run_id == answer["dag_run_id"]))
    return response.status_code, answer
