"""The aliases take the gate's outcome as a string: the two vocabularies must not drift."""

from __future__ import annotations

from typing import get_args

from mlops.gate.policy import Outcome
from mlops.registry.aliases import OUTCOMES


def test_alias_outcomes_are_the_gate_outcomes() -> None:
    assert OUTCOMES == get_args(Outcome)
