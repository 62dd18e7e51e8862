"""What the service serves, kept current from the registry without a restart.

A background thread asks the registry every ``poll_s`` seconds for the champion alias and the
rollout tag (one call, ~3 ms). When they changed, the versions not yet in memory are loaded
and a new frozen ``ServingModels`` replaces the old one in a single assignment: a request
reads ``holder.current`` once and works with that snapshot to the end, so it never mixes the
old champion with the new rollout. Versions already loaded are reused (a promotion moves the
challenger's model to the champion's slot without loading it again). A failed poll keeps
serving the last good snapshot and is counted. A champion that fails to load (or that
``mlops.registry.trust`` refuses) keeps the last good snapshot serving too, with the refused
version and the reason under ``failed["champion"]`` (``/health``, ``fraud_model_load_failed``);
it is tried again on every poll while the alias points at it. The service only becomes ready
once a champion is loaded. The ``previous`` version stays loaded too (blue-green): a
rollback then swaps it back in without a load.

A challenger or ``previous`` that fails to load or to warm up is left out of the snapshot
with the reason (``ServingModels.failed``, shown by ``/health`` and a metric) and never
blocks the rest: the champion's moves still apply on the same poll. It is tried again on
every poll while it stays in the registry, so a version that was only unreachable comes
back by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlops.registry.trust import UntrustedModel
from mlops.rollout.live import LiveVariants, live_variants, load_version, registry_client
from mlops.rollout.state import NO_ROLLOUT
from mlops.scoring.score import ServingModels, failure, load_serving

log = logging.getLogger(__name__)

# A version the trust check refused is checked again (a person may approve it, an artifact be
# put back) after this long, not on every poll: each check downloads and hashes the model.
RECHECK_REFUSED_S = 60.0

EMPTY = ServingModels(LiveVariants(None, None, NO_ROLLOUT), {})


def score_one_row(model: Any) -> None:
    """One ``predict_proba`` on a row of zeros: scikit-learn's lazy set-up is paid here, not
    by the first request, and a model that cannot score raises before it is served."""
    import pandas as pd

    from mlops.features.names import FEATURES

    model.predict_proba(pd.DataFrame([[0.0] * len(FEATURES)], columns=list(FEATURES)))


def load_warm(tracking_uri: str, model_name: str, version: str) -> Any:
    """Load a version and score one row with it (``score_one_row``); served through its
    checked fast form (``mlops.scoring.row_scorer``)."""
    from mlops.scoring.row_scorer import row_scorer

    model = load_version(tracking_uri, model_name, version)
    score_one_row(model)
    return row_scorer(model, version)


def _champion_left_out(current: ServingModels, live: LiveVariants, err: Exception) -> ServingModels:
    """``current`` serving on, naming the champion of ``live`` that could not load. The
    reason is the trust check's own (no host, port or setting in it), else the error's type
    only: the full error goes to the log."""
    version = str(live.champion)
    reason = failure("champion", version, err)
    if not isinstance(err, UntrustedModel):
        log.warning("champion v%s failed to load", version, exc_info=err)
        reason = f"champion v{version} failed to load: {type(err).__name__} (see the log)"
    failed = {**current.failed, "champion": reason}
    return replace(current, failed=failed, failed_versions={"champion": version})


class ModelHolder:
    """The current ``ServingModels`` of ``model_name``, refreshed by ``refresh`` or a poller."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        *,
        loader: Callable[[str, str, str], Any] = load_warm,
        live: Callable[[], LiveVariants] | None = None,
        on_reload: Callable[[ServingModels], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        before_poll: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.current: ServingModels = EMPTY
        self._loader = loader
        self._live = live or self._read_live
        self._on_reload = on_reload or (lambda serving: None)
        self._on_error = on_error or (lambda exc: None)
        self._before_poll = before_poll or (lambda: None)
        self.error: str | None = None  # why the last poll failed; None when it did not
        self.swap_s = 0.0  # the last swap: from the registry read that saw it to serving
        self._client: Any = None
        self._by_version: dict[str, Any] = {}
        self._refused: dict[str, tuple[float, UntrustedModel]] = {}  # version: (when, why)
        self._clock = clock
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Read the registry; swap in new models when something moved (or a version left
        out last time may load now). True when swapped."""
        with self._refresh_lock:
            live = self._live()
            seen = time.perf_counter()
            current = self.current
            if live == current.live and not current.failed:
                if live.champion is None or current.ready:
                    return False
            live, serving, loaded = self._serving(live, current)
            if live.previous and live.previous not in loaded:
                try:
                    loaded[live.previous] = self._load(live.previous)
                except Exception as err:  # a spare that cannot load must not stop serving
                    failed = {**serving.failed, "previous": failure("previous", live.previous, err)}
                    serving = replace(serving, failed=failed)
            same = serving.live == current.live and serving.models.keys() == current.models.keys()
            same = same and serving.failed_versions == current.failed_versions
            if same and serving.failed.keys() == current.failed.keys():
                return False  # the same versions still cannot load (messages may vary)
            self._by_version = loaded  # versions no longer live (nor previous) are released
            self.current = serving  # the atomic swap
            self.swap_s = time.perf_counter() - seen
        for role, reason in serving.failed.items():
            if role not in current.failed or not same:
                log.warning("left out of serving: %s", reason)
        log.info("serving %s", {**live.versions(), "rollout": live.rollout.to_dict()})
        self._on_reload(serving)
        return True

    def _read_live(self) -> LiveVariants:
        if self._client is None:
            self._client = registry_client(self.tracking_uri)
        return live_variants(self._client, self.model_name)

    def _serving(
        self, live: LiveVariants, current: ServingModels
    ) -> tuple[LiveVariants, ServingModels, dict[str, Any]]:
        """The snapshot of ``live`` and its models by version; if its champion cannot load,
        ``current`` serves on (its live variants and models), naming the champion left out."""
        try:
            serving = load_serving(live, self._load)
        except Exception as err:
            return current.live, _champion_left_out(current, live, err), dict(self._by_version)
        return live, serving, {live.versions()[v]: model for v, model in serving.models.items()}

    def _load(self, version: str) -> Any:
        cached = self._by_version.get(version)
        if cached is not None:
            return cached
        refused = self._refused.get(version)
        if refused and self._clock() - refused[0] < RECHECK_REFUSED_S:
            err = refused[1]
            raise UntrustedModel(err.model_name, err.version, err.reason)
        try:
            return self._loader(self.tracking_uri, self.model_name, version)
        except UntrustedModel as err:
            self._refused[version] = (self._clock(), err)
            raise

    def poll_once(self) -> None:
        """``before_poll`` (the service's other readiness checks), then ``refresh``. A failure
        keeps the last good models; it is counted and kept in ``error`` for ``/health``."""
        try:
            self._before_poll()
            self.refresh()
        except Exception as err:  # keep the last good models; the next poll retries
            log.exception("registry poll failed; still serving %s", self.current.live)
            self.error = f"last registry poll failed: {type(err).__name__}: {err}"[:500]
            self._on_error(err)
        else:
            self.error = None

    def _poll(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.poll_once()

    def start(self, every_s: float) -> None:
        """Poll the registry every ``every_s`` seconds in a daemon thread."""
        self._thread = threading.Thread(
            target=self._poll, args=(every_s,), name="registry-poll", daemon=True
        )
        self._thread.start()

    @property
    def polling(self) -> bool:
        """Whether the poller thread runs (started and not stopped or dead)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["EMPTY", "ModelHolder"]
