"""The end of the demo: the model service started for real, answering a few transactions of
the day after the last one processed (the online store holds that day's eve)."""

from __future__ import annotations

from typing import Any


def serve_examples(env: dict[str, str], rows: Any) -> list[dict[str, Any]]:
    """Start ``python -m mlops.serving.app``, POST ``rows`` to ``/predict``, print the answers
    (score, version and the variant that answered), stop the service."""
    import httpx

    from mlops.serving.process import ServiceProcess, request_body

    print("\nstarting the model service (python -m mlops.serving.app) ...", flush=True)
    with ServiceProcess(env) as service:
        health = httpx.get(f"{service.url}/health", headers=service.headers, timeout=10).json()
        print(
            f"ready in {service.started_s:.0f} s at {service.url} (bearer token per run): champion "
            f"v{health['champion']}, challenger {health['challenger'] or '-'}"
        )
        answer = httpx.post(
            f"{service.url}/predict", headers=service.headers, json=request_body(rows), timeout=60
        )
        answer.raise_for_status()
        predictions = answer.json()["predictions"]
    print(f"{'transaction':>12} {'card':>6} {'amount':>8}  score   version variant")
    for row, prediction in zip(rows.itertuples(index=False), predictions, strict=True):
        print(
            f"{prediction['transaction_id']:>12} {row.CUSTOMER_ID:>6} {row.TX_AMOUNT:>8.2f}  "
            f"{prediction['score']:.3f}  v{prediction['model_version']:<6} {prediction['variant']}"
        )
    return predictions
