"""Each row rule's numpy mask and its GX expectation are the same rule (tested on samples).

GX runs the expectations with ``result_format=COMPLETE`` here, so that its own list of
offending rows can be compared with the mask; in production it runs BOOLEAN_ONLY and only
its verdict is compared (``run._cross_check``).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlops.settings import ValidationRules
from mlops.validation.rules import row_checks
from mlops.validation.run import _batch_definition

DAY = date(2018, 4, 1)
RULES = ValidationRules(max_amount=500.0)


def sample(seed: int, rows: int = 400) -> pd.DataFrame:
    """Random rows around every rule's edges: nulls, negatives, the cap, other days, dups."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2018-04-01T00:00:00", "us")
    seconds = rng.integers(-3_600, 90_000, rows).astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": rng.integers(-2, rows * 2, rows),
            "TX_DATETIME": (start + seconds).astype("datetime64[us]"),
            "CUSTOMER_ID": rng.integers(-3, 50, rows),
            "TERMINAL_ID": rng.integers(-3, 50, rows),
            "TX_AMOUNT": rng.choice([-0.01, 0.0, 10.5, 499.99, 500.0, 7_000.0], rows),
            "TX_FRAUD": rng.choice([0, 1, 2, -1], rows, p=[0.7, 0.2, 0.05, 0.05]),
            "TX_FRAUD_SCENARIO": rng.integers(0, 4, rows),
        }
    )
    for column in ("CUSTOMER_ID", "TX_AMOUNT", "TX_DATETIME"):
        frame.loc[rng.random(rows) < 0.05, column] = None
    frame["CUSTOMER_ID"] = frame["CUSTOMER_ID"].astype("Int64")
    return frame


def gx_outcomes(expectations, frame):
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator

    suite = gx.ExpectationSuite(name="one_rule", expectations=expectations)
    validator = Validator(
        batch_definition=_batch_definition(),
        result_format={"result_format": "COMPLETE"},
        batch_parameters={"dataframe": frame},
    )
    return validator.validate_expectation_suite(suite).results


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_mask_equals_what_gx_flags(seed):
    frame = sample(seed)
    checks = row_checks(RULES, DAY)
    for check in checks:
        mask = check.mask(frame[check.column])
        outcomes = gx_outcomes(check.expectations(), frame)
        assert all(o.success for o in outcomes) == (not mask.any()), check
        if not check.extremes:
            (outcome,) = outcomes
            flagged = sorted(int(i) for i in outcome.result["unexpected_index_list"])
            assert flagged == np.flatnonzero(mask).tolist(), check
    assert any(check.mask(frame[check.column]).any() for check in checks)


def test_the_extremes_form_passes_a_day_whose_rows_all_pass():
    frame = sample(3).dropna(subset=["TX_DATETIME"])
    (check,) = [c for c in row_checks(RULES, DAY) if c.extremes]
    inside = frame[~check.mask(frame["TX_DATETIME"])].reset_index(drop=True)
    assert all(o.success for o in gx_outcomes(check.expectations(), inside))
    assert not check.mask(inside["TX_DATETIME"]).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_columns_and_nullable_columns_give_the_same_masks(seed):
    """Plain numpy columns take a vectorised path; pandas' nullable dtypes the generic one."""
    frame = sample(seed)
    nullable = {"int64": "Int64", "float64": "Float64", "datetime64[us]": "object"}
    for check in row_checks(RULES, DAY):
        column = frame[check.column]
        if str(column.dtype) not in nullable:
            continue
        other = column.astype(nullable[str(column.dtype)])
        if str(column.dtype) == "datetime64[us]":
            other = pd.Series(list(column.dt.to_pydatetime()), dtype=object).where(column.notna())
        assert check.mask(column).tolist() == check.mask(other).tolist(), check
