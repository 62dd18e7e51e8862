"""A long-lived process (the service, a driver, a preloaded worker) sees what other processes
wrote to S3 since its last look: listings and existence checks are never answered from
s3fs's directory cache."""

from __future__ import annotations

import boto3
import pytest

from mlops.io import storage

pytestmark = pytest.mark.integration


def test_files_written_by_another_process_are_listed_and_found(s3_server, bucket, aws_connection):
    folder = f"s3://{bucket}/deployments/history"
    other = boto3.client("s3", endpoint_url=s3_server)  # another process's writes
    other.put_object(Bucket=bucket, Key="deployments/history/a.json", Body=b"{}")
    assert [u.rsplit("/", 1)[-1] for u in storage.list_data_files(folder, aws_connection)] == [
        "a.json"
    ]
    assert not storage.exists(f"{folder}/b.json", aws_connection)

    other.put_object(Bucket=bucket, Key="deployments/history/b.json", Body=b"{}")
    listed = storage.list_data_files(folder, aws_connection)
    assert [u.rsplit("/", 1)[-1] for u in listed] == ["a.json", "b.json"]
    assert storage.exists(f"{folder}/b.json", aws_connection)

    other.delete_object(Bucket=bucket, Key="deployments/history/a.json")
    assert not storage.exists(f"{folder}/a.json", aws_connection)
    assert [u.rsplit("/", 1)[-1] for u in storage.list_data_files(folder, aws_connection)] == [
        "b.json"
    ]
