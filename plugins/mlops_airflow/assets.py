"""The Assets that link the DAGs; defined once, imported by producers and consumers."""

from __future__ import annotations

from airflow.sdk import Asset

from mlops_airflow.deployment import zone_uri

RAW_TRANSACTIONS = Asset(name="raw_transactions", uri=zone_uri("raw"), group="transactions")
VALIDATED_TRANSACTIONS = Asset(
    name="validated_transactions", uri=zone_uri("validated"), group="transactions"
)
