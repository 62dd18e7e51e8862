"""The Assets that link the DAGs; defined once, imported by producers and consumers.

Assets are identified by name; the storage location goes into ``extra``. An Asset whose
URI has a scheme (``s3://``, ``x://``) makes Airflow load every provider's URI handlers at
parse time, which imports boto3 through the amazon provider: about a second per parse.
"""

from __future__ import annotations

from airflow.sdk import Asset

from mlops import zones
from mlops_airflow.parse_time import zone_uri


def _data_asset(name: str, zone: str, group: str) -> Asset:
    return Asset(name=name, group=group, extra={"location": zone_uri(zone)})


VALIDATED_TRANSACTIONS = _data_asset("validated_transactions", zones.VALIDATED, "transactions")
# The day's feature partition and day-end snapshots, materialised to the online store.
FEATURES = _data_asset("features", zones.FEATURES, "features")
# Anyone may ask for a retraining by emitting an event on this asset (the monitoring
# policy does, with its reasons in the event's extra); model_training is scheduled on it.
RETRAIN_REQUEST = Asset(name="retrain_request", group="model")
CANDIDATE_MODEL = Asset(name="candidate_model", group="model")
# A rollback is asked for by an event on this asset, extra {"day", "version" (the bad
# champion), "reason"} (model_monitoring's policy emits it); model_rollback is scheduled on it.
ROLLBACK_REQUEST = Asset(name="rollback_request", group="model")
# One event a monitored day; its extra is the day's summary (drift, quality, champion).
MODEL_MONITORING = Asset(name="model_monitoring", group="model")
