"""The champion/challenger/previous aliases: who serves, who waits, where a rollback goes.

Aliases, never the deprecated stages. Every move is a no-op when the registry is already in
the target state (as TFX's Pusher skips) and is ordered so that an Airflow retry after a
crash half-way finishes it instead of doing it twice. Only ``approve`` moves an alias.
The gate's outcome arrives as a string (``OUTCOMES`` is held equal to
``mlops.gate.policy.Outcome`` by a test), so serving and monitoring can use the aliases
without importing the gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlops.registry.versions import MODEL_NAME, tracking_scope

ALIASES = ("champion", "challenger", "previous")
OUTCOMES = ("approve", "reject", "needs_review")
TAG_ROLLED_BACK = "mlops.rolled_back"


class AliasConflict(RuntimeError):
    """The aliases moved since the caller looked; acting anyway would ship an unseen model."""


@dataclass(frozen=True)
class AliasState:
    champion: str | None = None
    challenger: str | None = None
    previous: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AliasUpdate:
    """What a move did: ``changed`` False means the registry was left exactly as it was."""

    action: str
    changed: bool
    reason: str
    before: AliasState
    after: AliasState

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _state(client: Any, model_name: str) -> AliasState:
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(model_name).aliases
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return AliasState()
        raise
    return AliasState(**{a: str(aliases[a]) for a in ALIASES if a in aliases})


def alias_state(tracking_uri: str, model_name: str = MODEL_NAME) -> AliasState:
    with tracking_scope(tracking_uri) as client:
        return _state(client, model_name)


def champion_version(tracking_uri: str, model_name: str = MODEL_NAME) -> str | None:
    """The serving version, or None before the first promotion."""
    return alias_state(tracking_uri, model_name).champion


def _done(client: Any, name: str, action: str, reason: str, before: AliasState) -> AliasUpdate:
    after = _state(client, name)
    return AliasUpdate(action, after != before, reason, before, after)


def _skip(action: str, reason: str, state: AliasState) -> AliasUpdate:
    return AliasUpdate(action, False, reason, state, state)


def set_challenger(
    tracking_uri: str, version: str | int, model_name: str = MODEL_NAME
) -> AliasUpdate:
    """Make ``version`` the challenger (replacing an older, unpromoted challenger)."""
    version = str(version)
    with tracking_scope(tracking_uri) as client:
        before = _state(client, model_name)
        if version in (before.challenger, before.champion):
            role = "challenger" if version == before.challenger else "champion"
            return _skip("set_challenger", f"v{version} is already {role}", before)
        client.get_model_version(model_name, version)  # raises if there is no such version
        client.set_registered_model_alias(model_name, "challenger", version)
        return _done(client, model_name, "set_challenger", f"challenger -> v{version}", before)


def promote_challenger(
    tracking_uri: str, model_name: str = MODEL_NAME, *, expected_version: str | int | None = None
) -> AliasUpdate:
    """champion -> previous, challenger -> champion, challenger removed; in a crash-safe order.

    ``expected_version`` is the challenger the caller observed in its rollout: if the alias
    has moved to another version since, promoting would ship a model nobody watched, so
    that raises ``AliasConflict`` (and is a no-op if the expected version is already champion).
    """
    expected = None if expected_version is None else str(expected_version)
    with tracking_scope(tracking_uri) as client:
        before = _state(client, model_name)
        if expected is not None and before.challenger != expected:
            if before.champion == expected:
                return _skip("promote", f"v{expected} is already champion", before)
            raise AliasConflict(f"challenger is {before.challenger}, expected v{expected}")
        if before.challenger is None:
            return _skip("promote", "no challenger to promote", before)
        if before.champion != before.challenger:  # equal: crashed after moving champion
            if before.champion is not None:
                client.set_registered_model_alias(model_name, "previous", before.champion)
            client.set_registered_model_alias(model_name, "champion", before.challenger)
        client.delete_registered_model_alias(model_name, "challenger")
        return _done(client, model_name, "promote", f"champion -> v{before.challenger}", before)


def withdraw_challenger(
    tracking_uri: str, model_name: str = MODEL_NAME, *, expected_version: str | int
) -> AliasUpdate:
    """A challenger that failed its rollout: the alias is removed and the version tagged
    ``mlops.rolled_back``; the champion is not touched. A no-op when the challenger is
    already another version (or none)."""
    expected = str(expected_version)
    with tracking_scope(tracking_uri) as client:
        before = _state(client, model_name)
        if before.challenger != expected:
            reason = f"challenger is {before.challenger}, not v{expected}: nothing to withdraw"
            return _skip("withdraw", reason, before)
        client.set_model_version_tag(model_name, expected, TAG_ROLLED_BACK, "true")
        client.delete_registered_model_alias(model_name, "challenger")
        return _done(client, model_name, "withdraw", f"challenger v{expected} withdrawn", before)


def rollback(
    tracking_uri: str, model_name: str = MODEL_NAME, *, expected_champion: str | int | None = None
) -> AliasUpdate:
    """previous -> champion; ``previous`` is then removed so a second rollback is a no-op.

    ``expected_champion`` is the version the caller found bad: if the champion is already
    another version (rolled back or promoted since), nothing is done.
    """
    expected = None if expected_champion is None else str(expected_champion)
    with tracking_scope(tracking_uri) as client:
        before = _state(client, model_name)
        if before.previous is None:
            return _skip("rollback", "no previous version to roll back to", before)
        if expected is not None and before.champion not in (expected, before.previous):
            reason = f"champion is v{before.champion}, not v{expected}: nothing to roll back"
            return _skip("rollback", reason, before)
        if before.champion != before.previous:  # equal: crashed after moving champion
            if before.champion is not None:
                client.set_model_version_tag(model_name, before.champion, TAG_ROLLED_BACK, "true")
            client.set_registered_model_alias(model_name, "champion", before.previous)
        client.delete_registered_model_alias(model_name, "previous")
        return _done(client, model_name, "rollback", f"champion -> v{before.previous}", before)


def apply_decision(
    tracking_uri: str, outcome: str, version: str | int, model_name: str = MODEL_NAME
) -> AliasUpdate:
    """The gate's outcome (``GateDecision.outcome``) applied to the aliases.

    Approve makes ``version`` the challenger; reject and needs_review touch nothing at all.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown gate outcome {outcome!r}; expected one of {OUTCOMES}")
    if outcome == "approve":
        return set_challenger(tracking_uri, version, model_name)
    state = alias_state(tracking_uri, model_name)  # read only, for the record
    return _skip("none", f"gate outcome {outcome}: aliases untouched", state)
