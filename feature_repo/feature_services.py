"""What the model reads: one service per model input contract, versioned in its name.

A model trained on ``fraud_model_v1`` is served from ``fraud_model_v1``; a change of the
inputs is a new service (``fraud_model_v2``) next to this one, never an edit of it.
"""

from __future__ import annotations

from entities import OWNER
from feast import FeatureService
from feature_views import customer_daily_spending, terminal_daily_risk

fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    features=[customer_daily_spending, terminal_daily_risk],
    description=(
        "Day-end snapshots behind the handbook's 15 inputs (daily definition); combine them "
        "with the transaction via mlops.features.serving.request_features."
    ),
    tags={"model": "fraud", "inputs": "15", "definition": "daily"},
    owner=OWNER,
)
