"""The Assets that link the DAGs; defined once, imported by producers and consumers.

Assets are identified by name; the storage location goes into ``extra``. An Asset whose
URI has a scheme (``s3://``, ``x://``) makes Airflow load every provider's URI handlers at
parse time, which imports boto3 through the amazon provider: about a second per parse.

The daily chain's assets (validated transactions, features, scored predictions) are
partitioned by the data day: each event carries the day ``YYYY-MM-DD`` as its partition key
(``outlet_events[asset].add_partitions(day)``), so a partition-aware consumer
(``PartitionedAssetTimetable``, e.g. with ``StartOfDayMapper(input_format="%Y-%m-%d")``)
gets one run per day. In Airflow 3.3.2 a keyed event wakes partition-aware DAGs only, and
every event of a run that has a key carries that key: the model assets below stay unkeyed,
and the DAGs that emit them are not partitioned (README, "How the day travels").
"""

from __future__ import annotations

from airflow.sdk import Asset

from mlops import zones
from mlops_airflow.parse_time import zone_uri

DAY_KEY = "%Y-%m-%d"  # the partition key of a data day, as the zones name it (date=...)


def _data_asset(name: str, zone: str, group: str) -> Asset:
    return Asset(name=name, group=group, extra={"location": zone_uri(zone)})


VALIDATED_TRANSACTIONS = _data_asset("validated_transactions", zones.VALIDATED, "transactions")
# The day's feature partition and day-end snapshots, materialised to the online store.
FEATURES = _data_asset("features", zones.FEATURES, "features")
# The day's batch partition of the prediction log (scored, or published empty when no
# champion serves yet), keyed by the day; model_monitoring reads it (its inlet).
SCORED_PREDICTIONS = _data_asset("scored_predictions", zones.PREDICTIONS, "predictions")
# Anyone may ask for a retraining by emitting an event on this asset (the monitoring
# policy does, with its reasons in the event's extra); model_training is scheduled on it.
RETRAIN_REQUEST = Asset(name="retrain_request", group="model")
CANDIDATE_MODEL = Asset(name="candidate_model", group="model")
# A rollback is asked for by an event on this asset, extra {"day", "version" (the bad
# champion), "reason"} (model_monitoring's policy emits it); model_rollback is scheduled on it.
ROLLBACK_REQUEST = Asset(name="rollback_request", group="model")
# One event a monitored day; its extra is the day's summary (drift, quality, champion).
MODEL_MONITORING = Asset(name="model_monitoring", group="model")
