"""A deferrable sensor for a day's landing partition, on a local folder or on S3.

A producer signals that a day is complete by writing ``<landing>/date=YYYY-MM-DD/_SUCCESS``
after its data files; waiting for the marker, not for any file, avoids ingesting a half
uploaded day. The day is resolved when the task runs (see ``context.partition_day``), so a
manual run without a logical date works too.

The waiting itself is done by the providers' triggers: the amazon provider's
``S3KeyTrigger`` (what ``S3KeySensor(deferrable=True)`` defers to, through the Airflow AWS
connection) and the standard provider's ``FileTrigger``. They are imported when the task
runs, not when the DAG file is parsed: importing the amazon provider loads boto3, about a
second on every parse. On timeout the task fails naming the partition that never came.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from mlops_airflow.context import partition_day

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

MARKER = "_SUCCESS"


def marker_uri(landing_uri: str, day: str) -> str:
    return f"{landing_uri.rstrip('/')}/date={day}/{MARKER}"


class LandingPartitionSensor(BaseSensorOperator):
    """Wait, deferred, until the day's landing partition is marked complete.

    :param landing_uri: landing folder or ``s3://bucket/prefix``; the day's marker is
        ``date=<day>/_SUCCESS`` under it. (templated)
    :param aws_conn_id: Airflow connection used for ``s3://`` landing.
    """

    template_fields = ("landing_uri",)

    def __init__(self, *, landing_uri: str, aws_conn_id: str = "aws_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.landing_uri = landing_uri
        self.aws_conn_id = aws_conn_id

    @property
    def on_s3(self) -> bool:
        return self.landing_uri.startswith("s3://")

    def poke(self, context: Context) -> bool:
        marker = marker_uri(self.landing_uri, partition_day(context))
        self.log.info("Looking for %s", marker)
        if self.on_s3:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            bucket, key = S3Hook.parse_s3_url(marker)
            return S3Hook(aws_conn_id=self.aws_conn_id).check_for_key(key, bucket)
        import os

        return os.path.isfile(marker)

    def execute(self, context: Context) -> None:
        if self.poke(context):
            return
        marker = marker_uri(self.landing_uri, partition_day(context))
        self.defer(
            trigger=self._trigger(marker),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def _trigger(self, marker: str) -> BaseTrigger:
        if self.on_s3:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from airflow.providers.amazon.aws.triggers.s3 import S3KeyTrigger

            bucket, key = S3Hook.parse_s3_url(marker)
            return S3KeyTrigger(
                bucket_name=bucket,
                bucket_key=key,
                aws_conn_id=self.aws_conn_id,
                poke_interval=self.poke_interval,
            )
        from airflow.providers.standard.triggers.file import FileTrigger

        return FileTrigger(filepath=marker, poke_interval=self.poke_interval)

    def execute_complete(self, context: Context, event: Any = None) -> None:
        if isinstance(event, dict) and event.get("status") == "error":
            raise AirflowException(f"waiting for the landing partition failed: {event['message']}")
        self.log.info("Landing partition for %s is complete", partition_day(context))

    def resume_execution(self, next_method: str, next_kwargs: Any, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as err:
            marker = marker_uri(self.landing_uri, partition_day(context))
            raise AirflowSensorTimeout(
                f"landing partition not complete: {marker} did not appear within "
                f"{self.timeout:.0f} s; land the day's files and its {MARKER} marker, "
                "then clear this task"
            ) from err
