"""``dag.test()`` as the scheduler runs a DAG that asset events woke.

``dag.test()`` always makes a manual run. Inside ``asset_triggered`` it makes the run the
scheduler makes when events of an asset queued: ``asset_triggered``, no logical date, the
events (written to the metadata DB, one after the other, in the order given) consumed by the
run, so its tasks see them in ``triggering_asset_events`` through the real Execution API.
Call ``dag.test(logical_date=None)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock


@contextmanager
def asset_triggered(asset: str, extras: Sequence[Mapping[str, Any]]) -> Iterator[None]:
    from airflow.models import dagrun
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.sdk import timezone
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    def woken_run(*, dag: Any, run_after: Any, session: Any, **_: Any) -> Any:
        model = session.scalar(select(AssetModel).where(AssetModel.name == asset))
        assert model is not None, f"no DAG in the bundle mentions the asset {asset!r}"
        first = timezone.utcnow() - timedelta(seconds=len(extras))
        events = [
            AssetEvent(asset_id=model.id, extra=dict(extra), timestamp=first + timedelta(seconds=i))
            for i, extra in enumerate(extras)
        ]
        session.add_all(events)
        session.flush()
        run = dag.create_dagrun(
            run_id=dagrun.DagRun.generate_run_id(
                run_type=DagRunType.ASSET_TRIGGERED, logical_date=None, run_after=run_after
            ),
            logical_date=None,
            data_interval=None,
            run_after=run_after,
            run_type=DagRunType.ASSET_TRIGGERED,
            triggered_by=DagRunTriggeredByType.ASSET,
            state=DagRunState.RUNNING,
            start_date=run_after,
            session=session,
        )
        run.consumed_asset_events.extend(events)
        session.commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", woken_run):
        yield
