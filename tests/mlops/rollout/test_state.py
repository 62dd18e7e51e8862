"""The rollout state and the router: proportions, stability, strategies, the registry tag."""

from __future__ import annotations

import math

import pytest

from mlops.rollout.live import variants_from
from mlops.rollout.state import (
    CHALLENGER,
    CHAMPION,
    NO_ROLLOUT,
    ROLLOUT_TAG,
    RolloutError,
    RolloutState,
    clear_rollout,
    read_rollout,
    route,
    scored_variants,
    write_rollout,
)

CARDS = range(100_000)


def canary(share: float, **kw) -> RolloutState:
    return RolloutState("canary", "3", share, kw.pop("start_day", "2018-05-10"), "2", **kw)


@pytest.mark.parametrize("share", [0.01, 0.05, 0.1, 0.25, 0.5, 0.9])
def test_canary_share_is_honoured_within_binomial_bounds(share):
    state = canary(share)
    hits = sum(route(card, state) == CHALLENGER for card in CARDS)
    sigma = math.sqrt(len(CARDS) * share * (1 - share))
    assert abs(hits - len(CARDS) * share) < 4.5 * sigma  # p ~ 7e-6 per case by chance


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_canary_shares_at_the_ends_send_all_or_nothing(share):
    state = canary(share)
    expected = CHALLENGER if share == 1.0 else CHAMPION
    assert {route(card, state) for card in range(5_000)} == {expected}


def test_a_card_keeps_its_variant_within_a_rollout_and_is_redrawn_by_the_next():
    state = canary(0.3)
    first = [route(card, state) for card in range(20_000)]
    again = [route(card, RolloutState.from_json(state.to_json())) for card in range(20_000)]
    assert first == again
    assert [route(str(card), state) for card in range(20_000)] == first  # ids as strings too
    later = [route(card, canary(0.3, start_day="2018-06-01")) for card in range(20_000)]
    moved = sum(a != b for a, b in zip(first, later, strict=True))
    assert 0.3 * 20_000 < moved < 0.5 * 20_000  # independent draws: 2 * 0.3 * 0.7 = 42 %


def test_a_larger_share_only_adds_cards():
    small, large = canary(0.1), canary(0.2)
    for card in range(20_000):
        if route(card, small) == CHALLENGER:
            assert route(card, large) == CHALLENGER


def test_shadow_and_direct_always_answer_with_the_champion():
    shadow = RolloutState("shadow", "3", 0.0, "2018-05-10", "2")
    assert {route(card, shadow) for card in range(10_000)} == {CHAMPION}
    assert {route(card, NO_ROLLOUT) for card in range(10_000)} == {CHAMPION}
    assert scored_variants(shadow) == (CHAMPION, CHALLENGER)
    assert scored_variants(canary(0.1)) == (CHAMPION, CHALLENGER)
    assert scored_variants(NO_ROLLOUT) == (CHAMPION,)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "blue"}, "strategy must be one of"),
        ({"strategy": "canary", "challenger_version": "3", "canary_share": 1.5}, r"\[0, 1\]"),
        ({"strategy": "canary", "challenger_version": "3", "canary_share": math.nan}, "finite"),
        ({"strategy": "shadow", "challenger_version": "3", "canary_share": 0.2}, "must be 0"),
        ({"strategy": "canary", "canary_share": 0.2}, "needs a challenger_version"),
        ({"strategy": "shadow", "challenger_version": "v3"}, "challenger_version must be"),
    ],
)
def test_impossible_states_are_refused_naming_the_field(fields, message):
    with pytest.raises(RolloutError, match=message):
        RolloutState(**fields)


def test_a_tag_with_unknown_fields_is_refused():
    with pytest.raises(RolloutError, match="unknown fields"):
        RolloutState.from_json('{"strategy": "direct", "share": 0.5}')


def test_live_variants_follow_the_champion_alias_and_the_active_rollout():
    tag = {ROLLOUT_TAG: canary(0.2).to_json()}
    live = variants_from({"champion": "2", "challenger": "3"}, tag)
    assert (live.champion, live.challenger, live.rollout) == ("2", "3", canary(0.2))
    promoted = variants_from({"champion": "3"}, tag)  # promoted, tag not yet cleared
    assert (promoted.challenger, promoted.rollout) == (None, NO_ROLLOUT)
    assert variants_from({}, tag).versions() == {}
    assert variants_from({"champion": "2"}, {}).versions() == {"champion": "2"}


@pytest.fixture
def client(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("fraud_model")
    return client


def test_the_rollout_lives_in_one_registered_model_tag(client):
    assert read_rollout(client, "fraud_model") == NO_ROLLOUT
    assert read_rollout(client, "no_such_model") == NO_ROLLOUT
    write_rollout(client, "fraud_model", canary(0.25))
    assert read_rollout(client, "fraud_model") == canary(0.25)
    assert set(client.get_registered_model("fraud_model").tags) == {ROLLOUT_TAG}
    assert clear_rollout(client, "fraud_model") == NO_ROLLOUT
    assert client.get_registered_model("fraud_model").tags == {}
    assert clear_rollout(client, "fraud_model") == NO_ROLLOUT  # twice: a no-op
