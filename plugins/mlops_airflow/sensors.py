"""Deferrable sensors for a day's landing partition, on a local folder or on S3.

A producer signals that a day is complete by writing ``<landing>/date=YYYY-MM-DD/_SUCCESS``
after its data files; waiting for the marker, not for any file, avoids ingesting a half
uploaded day. The day is resolved when the task runs (see ``context.partition_day``), so a
manual run without a logical date works too. On timeout the task fails naming the partition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk.exceptions import AirflowSensorTimeout

from mlops_airflow.context import partition_day

if TYPE_CHECKING:
    from airflow.sdk import Context

MARKER = "_SUCCESS"


def marker_uri(landing_uri: str, day: str) -> str:
    return f"{landing_uri.rstrip('/')}/date={day}/{MARKER}"


class _NamesMissingPartition:
    """Turns a deferral timeout into an error that says which partition never arrived."""

    landing_uri: str
    timeout: float

    def resume_execution(self, next_method: str, next_kwargs: Any, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]
        except AirflowSensorTimeout as err:
            marker = marker_uri(self.landing_uri, partition_day(context))
            raise AirflowSensorTimeout(
                f"landing partition not complete: {marker} did not appear within "
                f"{self.timeout:.0f} s; land the day's files and its {MARKER} marker, "
                "then clear this task"
            ) from err


class LandingPartitionFileSensor(_NamesMissingPartition, FileSensor):
    """Wait, deferred, for the day's marker in a local or mounted landing folder.

    :param landing_uri: landing folder; the day's marker is ``date=<day>/_SUCCESS`` under it.
    """

    template_fields = (*FileSensor.template_fields, "landing_uri")

    def __init__(self, *, landing_uri: str, **kwargs: Any) -> None:
        super().__init__(filepath="", deferrable=True, **kwargs)
        self.landing_uri = landing_uri

    def execute(self, context: Context) -> None:
        self.filepath = marker_uri(self.landing_uri, partition_day(context))
        super().execute(context)


class LandingPartitionS3Sensor(_NamesMissingPartition, S3KeySensor):
    """Wait, deferred, for the day's marker under an ``s3://`` landing prefix.

    :param landing_uri: ``s3://bucket/prefix`` of the landing zone. (templated)
    """

    template_fields = (*S3KeySensor.template_fields, "landing_uri")

    def __init__(self, *, landing_uri: str, **kwargs: Any) -> None:
        super().__init__(bucket_key="", deferrable=True, **kwargs)
        self.landing_uri = landing_uri

    def execute(self, context: Context) -> None:
        self.bucket_key = marker_uri(self.landing_uri, partition_day(context))
        super().execute(context)


def landing_partition_sensor(*, landing_uri: str, **kwargs: Any) -> FileSensor | S3KeySensor:
    """The sensor that fits the landing location's scheme."""
    if landing_uri.startswith("s3://"):
        return LandingPartitionS3Sensor(landing_uri=landing_uri, **kwargs)
    return LandingPartitionFileSensor(landing_uri=landing_uri, **kwargs)
