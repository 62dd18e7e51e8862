"""Answering Airflow's human-in-the-loop tasks from a test, as a person or as nobody.

``dag.test()`` never answers a HITL task and never applies its timeout: it waits while the
task is ``awaiting_input``. A helper thread (``tests.support.threads.helper_thread``) does
what the people and the scheduler would: ``answer_hitl`` PATCHes the pending detail through
the REST API as a SimpleAuthManager user (an ``outsider`` tries first and must get 403), and
``time_out_hitl`` moves the deadline into the past and runs the scheduler's sweep, which
applies the task's default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

REQUESTER = "dag_test"  # dag.test() triggers its run as this user
WAIT_S = 120


def as_user(client, name: str) -> dict[str, str]:
    """The Authorization header of SimpleAuthManager user ``name`` (role user: may answer
    HITL tasks of any DAG, as far as the role goes)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role="user"))
    return {"Authorization": f"Bearer {token}"}


def pending_hitl(client, headers, dag_id: str, task_id: str) -> str:
    """The REST path of the pending HITL detail of ``dag_id.task_id``, once there is one."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        response = client.get("/api/v2/dags/~/dagRuns/~/hitlDetails", headers=headers)
        assert response.status_code == 200, response.text
        waiting = [
            d
            for d in response.json().get("hitl_details", [])
            if d["task_instance"]["dag_id"] == dag_id
            and d["task_instance"]["task_id"] == task_id
            and not d["response_received"]
        ]
        if waiting:
            run_id = waiting[0]["task_instance"]["dag_run_id"]
            return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        time.sleep(0.5)
    raise AssertionError(f"no {dag_id}.{task_id} was pending within {WAIT_S} s")


def answer_hitl(
    dag_id: str,
    task_id: str,
    user: str,
    choice: str,
    outsider: str | None = None,
    comment: str = "checked the model card",
) -> Callable[[], None]:
    """A person answering in the UI: the REST API's PATCH on the pending HITL detail, as
    ``user``; an ``outsider`` (not an approver) tries first and must be refused."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    client = TestClient(create_app("core"))

    def answer() -> None:
        path = pending_hitl(client, as_user(client, user), dag_id, task_id)
        body = {"chosen_options": [choice], "params_input": {"comment": comment}}
        if outsider:
            refused = client.patch(path, json=body, headers=as_user(client, outsider))
            assert refused.status_code == 403, refused.text
            assert f"User={outsider}" in refused.json()["detail"]
        response = client.patch(path, json=body, headers=as_user(client, user))
        assert response.status_code == 200, response.text
        assert response.json()["responded_by"]["name"] == user

    return answer


def time_out_hitl(task_id: str) -> Callable[[], None]:
    """Nobody answers ``task_id``: its deadline passes and the scheduler's sweep applies the
    default (what a running scheduler does every 15 s)."""

    def time_out() -> None:
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select, update

        deadline = time.monotonic() + WAIT_S
        waiting = select(TaskInstance.id).where(
            TaskInstance.task_id == task_id,
            TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
        )
        while time.monotonic() < deadline:
            with create_session() as session:
                ids = session.scalars(waiting).all()
                if ids:
                    past = datetime.now(UTC) - timedelta(seconds=1)
                    session.execute(
                        update(TaskInstance)
                        .where(TaskInstance.id.in_(ids))
                        .values(trigger_timeout=past)
                    )
            if ids:
                SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
                return
            time.sleep(0.5)
        raise AssertionError(f"no {task_id} was awaiting input within {WAIT_S} s")

    time_out.__name__ = f"time_out_{task_id}"
    return time_out


def hitl_response(
    choice: str, user: str | None, *, at: datetime, comment: str = "read it", **extra: object
) -> dict:
    """Airflow's HITL response as the approval operator hands it on: ``user`` chose
    ``choice`` at ``at`` (``timedout=True`` and the like in ``extra``)."""
    return {
        "chosen_options": [choice],
        "params_input": {"comment": comment},
        "responded_at": at,
        "responded_by_user": {"id": user, "name": user} if user else None,
        **extra,
    }
