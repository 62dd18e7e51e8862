"""Airflow adapters of the mlops package: assets, sensors and task-time helpers."""
