"""The Assets that link the DAGs; defined once, imported by producers and consumers."""

from __future__ import annotations

from airflow.sdk import Asset

from mlops_airflow.deployment import zone_uri

RAW_TRANSACTIONS = Asset(name="raw_transactions", uri=zone_uri("raw"), group="transactions")
VALIDATED_TRANSACTIONS = Asset(
    name="validated_transactions", uri=zone_uri("validated"), group="transactions"
)
# Anyone may ask for a retraining by emitting an event on this asset (the monitoring
# policy does, with its reasons in the event's extra); model_training is scheduled on it.
RETRAIN_REQUEST = Asset(name="retrain_request", uri="mlops://retrain_request", group="model")
CANDIDATE_MODEL = Asset(name="candidate_model", uri="mlops://candidate_model", group="model")
