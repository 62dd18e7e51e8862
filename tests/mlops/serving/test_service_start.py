"""Starting the model service as a process (``ServiceProcess``): interrupted while it waits
for the service to answer, it leaves no service behind."""

from __future__ import annotations

import pytest

from mlops.serving import process as service_process


def test_a_ctrl_c_while_waiting_for_the_service_stops_it(tmp_path, monkeypatch):
    service = service_process.ServiceProcess({"MLOPS_DATA_ROOT": str(tmp_path)})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("Ctrl-C")

    monkeypatch.setattr(service_process.httpx, "get", interrupted)
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C"):
        service.start(timeout_s=30)
    assert service.process is not None
    assert service.process.poll() is not None  # stopped, not left running
