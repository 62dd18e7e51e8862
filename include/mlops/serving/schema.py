"""The service's request and response bodies: strict, so a bad request is refused by name.

Unknown fields, wrong JSON types (a string for a number, a float for an id, a bool for
anything), missing ids, NaN or infinite amounts, times outside 2000-2100 and batches larger
than the configured maximum are all 422s whose ``detail`` names the offending field
(``loc``). Ids are int64, as in the transactions table. ``tx_datetime`` is an ISO 8601 string;
a naive time is UTC, an aware one is converted to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

INT64_MAX = 2**63 - 1
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _iso_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    moment = datetime.fromisoformat(value)  # ValueError names the bad string
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return moment


Id = Annotated[int, Field(ge=0, le=INT64_MAX)]
TxTime = Annotated[
    datetime,
    BeforeValidator(_iso_time),
    Field(strict=False, json_schema_extra={"type": "string", "format": "date-time"}),
]


class Transaction(BaseModel):
    """One card transaction to score."""

    model_config = STRICT

    transaction_id: Id
    customer_id: Id = Field(description="the card (Feast entity CUSTOMER_ID)")
    terminal_id: Id = Field(description="the terminal (Feast entity TERMINAL_ID)")
    tx_datetime: TxTime
    tx_amount: float = Field(ge=0, le=1_000_000)


def predict_request(max_batch: int) -> type[BaseModel]:
    """The ``/predict`` body: one to ``max_batch`` transactions."""
    batch = Annotated[list[Transaction], Field(min_length=1, max_length=max_batch)]
    return create_model("PredictRequest", __config__=STRICT, transactions=(batch, ...))


class Prediction(BaseModel):
    transaction_id: int
    score: float = Field(description="fraud probability from the variant that answered")
    variant: str = Field(description="champion or challenger")
    model_version: str
    features_status: dict[str, str] = Field(
        description="per entity: current, quiet, or missing (served with default features)"
    )


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[Prediction]


class Status(BaseModel):
    """``/health`` to a caller without the token: whether the service is ready, no more."""

    ready: bool


class Health(BaseModel):
    """``/health`` to a caller with the token."""

    ready: bool
    champion: str | None
    challenger: str | None
    rollout: dict[str, Any]
    reasons: list[str] = Field(default=[], description="why the service is not ready")
    failed: dict[str, str] = Field(
        default={},
        description="versions left out (cannot load, refused or cannot warm up), with why; "
        "a refused champion is listed while the last one serves on",
    )


class Liveness(BaseModel):
    alive: bool = Field(description="the process answers and its registry poller runs")
    ready: bool = Field(description="a champion is loaded and features readable (as /health)")
