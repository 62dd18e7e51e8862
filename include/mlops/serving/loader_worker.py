"""The model service's loader process (``mlops.serving.loader``): reads requests from stdin
and answers on stdout, one framed pickle each, until stdin closes.

- ``("live", ())``: the live variants (``mlops.rollout.live.live_variants``);
- ``("load", (version,))``: the version loaded through the trust check, scored once, and
  packed with its checked fast form (``mlops.scoring.portable``).

An exception is answered as itself when it survives a pickle round trip, else as a
``RuntimeError`` naming its type; the traceback goes to stderr (the service's log). Anything
a library prints goes to stderr too: fd 1 is the answer pipe, kept apart before any import.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import sys
from typing import Any

log = logging.getLogger("mlops.serving.loader")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the server that started it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the closed stdin still ends the loop
        pass
    if os.getppid() == 1:  # the server died before the call above
        sys.exit(0)


def _portable(err: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(err))  # noqa: S301 (a round trip of our own object)
        return err
    except Exception:  # an exception whose arguments do not pickle back
        return RuntimeError(f"{type(err).__name__}: {err}")


class Worker:
    def __init__(self, tracking_uri: str, model_name: str) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self._client: Any = None

    def prepare(self) -> None:
        """What every call needs, imported and opened before the first one arrives: the
        client first (``live`` is the server's first call), then skops (seconds: its import
        lists every scikit-learn estimator as a default trusted type)."""
        from mlops.rollout.live import registry_client

        self._client = registry_client(self.tracking_uri)
        import skops.io  # noqa: F401

    def live(self) -> Any:
        from mlops.rollout.live import live_variants

        return live_variants(self._client, self.model_name)

    def load(self, version: str) -> Any:
        """The version through the trust check, scored once (a model that cannot score is
        refused here), its fast form checked against ``predict_proba`` and packed."""
        from mlops.rollout.live import load_version
        from mlops.scoring.portable import portable_scorer
        from mlops.serving.holder import score_one_row

        model = load_version(self.tracking_uri, self.model_name, version)
        score_one_row(model)
        packed = portable_scorer(model, version)
        if os.nice(0) == 0:  # after the first load: later ones yield the CPU to the server
            os.nice(19)
        return packed

    def answer(self, op: str, args: tuple) -> tuple[str, Any]:
        try:
            return "ok", getattr(self, op)(*args) if op in ("live", "load") else None
        except Exception as err:
            log.warning("model loader: %s%s failed", op, args, exc_info=True)
            return "error", _portable(err)


def main() -> None:
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() of any library goes to the log, not into the answer pipe
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from mlops.serving.loader import receive, send
    from mlops.serving.startup import cap_native_threads, refuse_pickle, skip_mlflow_header_plugins

    refuse_pickle()
    skip_mlflow_header_plugins()
    cap_native_threads(1)
    worker = Worker(*sys.argv[1:3])
    worker.prepare()
    log.info("model loader ready (pid %s)", os.getpid())
    requests = sys.stdin.buffer.fileno()
    while True:
        try:
            op, args = receive(requests)
        except EOFError:
            return
        send(answers, worker.answer(op, args))


if __name__ == "__main__":
    main()
