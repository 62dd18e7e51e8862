"""Alerts: what a person must hear about, kept beside the data and posted to a webhook.

Three kinds: a task that failed its last try, a DAG run that failed (a task, or its
``dagrun_timeout``), a run that missed its deadline. An alert is logged at ERROR, written as
one JSON document under the data root's ``alerts/`` zone (atomically; its name is its key)
and, when a webhook URL is set
(``MLOPS_ALERT_WEBHOOK_URL``, ``Settings.alert_webhook_url``: a chat incoming webhook, or a
relay to a pager), POSTed there as the same JSON. Posting is best effort: a webhook that is down,
refuses or does not answer within 10 s is logged and never raised, because whoever alerts is
already handling a failure and the file is written.

The same failure is alerted once: Airflow may call a task's failure callback twice for one
try (the worker after the try, and the dag-processor when the scheduler then finds the task
without a heartbeat or in a state it did not expect), so an alert whose file exists already
is only logged, not written or posted again. A task's next try, a run's failure and its
missed deadline have keys of their own.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops import zones
from mlops.io import storage
from mlops.settings import Settings

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 10.0
TASK_FAILED, RUN_FAILED, DEADLINE_MISSED = "task_failed", "run_failed", "deadline_missed"


@dataclass(frozen=True)
class Alert:
    """What went wrong, where, and why; ``kind`` is one of the three above (a receiver may
    route on it). A run's alerts have no task: ``task_id`` is empty, ``try_number`` 0."""

    summary: str
    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    error: str
    recorded_at: str | None = None  # wall clock, for the person reading it
    details: dict[str, Any] = field(default_factory=dict)
    kind: str = TASK_FAILED

    @property
    def key(self) -> str:
        run = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.run_id)
        if self.kind == TASK_FAILED:
            return f"{self.dag_id}_{self.task_id}_{run}_try{self.try_number}"
        return f"{self.dag_id}_{run}_{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SentAlert:
    uri: str
    posted: bool | None  # None: no webhook configured, or a repeat
    repeated: bool = False  # alerted before (its file exists): not written or posted again


def alert_uri(settings: Settings, alert: Alert) -> str:
    return storage.join(settings.zone(zones.ALERTS), f"{alert.key}.json")


def post_json(url: str, payload: dict[str, Any], timeout_s: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST ``payload``; True on a 2xx answer. Never raises: a failure is logged."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return 200 <= response.status < 300
    except (OSError, ValueError, http.client.HTTPException) as err:  # refused, timeout, 4xx/5xx
        log.warning("could not post the alert to the webhook: %s", err)
        return False


def send_alert(
    settings: Settings,
    alert: Alert,
    options: storage.StorageOptions | None = None,
    *,
    webhook_url: str | None = None,
    timeout_s: float = WEBHOOK_TIMEOUT_S,
) -> SentAlert:
    """Log ``alert`` at ERROR, write it under ``alerts/``, POST it to ``webhook_url`` (by
    default the settings' ``alert_webhook_url``) if any; a repeat is only logged."""
    uri = alert_uri(settings, alert)
    if storage.exists(uri, options):
        log.warning("alert %s was sent already (%s): not sent again", alert.key, uri)
        return SentAlert(uri, None, repeated=True)
    log.error("ALERT %s (run %s): %s", alert.summary, alert.run_id, alert.error)
    uri = storage.write_json_atomic(uri, alert.to_dict(), options)
    url = webhook_url or settings.alert_webhook_url
    posted = post_json(url, alert.to_dict(), timeout_s) if url else None
    return SentAlert(uri, posted)


__all__ = [
    "DEADLINE_MISSED",
    "RUN_FAILED",
    "TASK_FAILED",
    "WEBHOOK_TIMEOUT_S",
    "Alert",
    "SentAlert",
    "alert_uri",
    "post_json",
    "send_alert",
]
