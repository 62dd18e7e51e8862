"""``python -m mlops.simulator``: the same entry point as the ``mlops-simulate`` script."""

from __future__ import annotations

from mlops.simulator.cli import main

raise SystemExit(main())
