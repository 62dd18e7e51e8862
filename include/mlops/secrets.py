"""No production process starts on a secret that anyone can read in this repository.

``.env.example`` ships placeholders (each carries ``change-me``), docker-compose.yaml falls
back to defaults when .env lacks a variable, and earlier versions of .env.example shipped a
working Fernet key and admin/admin. In the ``production`` profile, ``check_secrets`` refuses
a process environment that holds any of them, as a variable's value, as the password of a
URL or of a JSON connection, or that leaves a secret empty. The model service calls it
before it loads anything (``mlops.serving.startup``), every Airflow process on import
(``plugins/airflow_local_settings.py``). The message names the variable, never the value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

PROFILE_CHECKED = "production"
PLACEHOLDER_MARK = "change-me"  # in every placeholder of .env.example; refused anywhere
# Refused as a secret variable's value or a password: what compose falls back to (POSTGRES,
# RABBITMQ, MINIO, the admin password) and what .env.example shipped before placeholders. A
# test holds this in step with .env.example and docker-compose.yaml.
EXAMPLE_VALUES = frozenset(
    {
        "admin",
        "airflow",
        "minio",
        "minio-secret",
        "mlops",
        "2nzzY2jHq4z_LVqY0yQk6vvyJbq9Kl5SGQp0uH1B5iA=",
        "dev-only-jwt-secret-change-me",
        "dev-only-api-secret-change-me",
    }
)
# Every Airflow component must have these, the same in each (compose requires them too).
AIRFLOW_REQUIRED = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)
# A variable named like this holds a secret itself (not a URL with one inside).
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$")


class SecretsError(ValueError):
    """A production process was about to start with an example or empty secret."""


def is_example(value: str) -> bool:
    return value.strip() in EXAMPLE_VALUES or PLACEHOLDER_MARK in value.lower()


def _embedded_password(value: str) -> str | None:
    """The password of a URL (``scheme://user:password@host``) or of a JSON connection."""
    text = value.strip()
    if text.startswith("{"):
        try:
            password = json.loads(text).get("password")
        except (ValueError, AttributeError):
            return None
        return password if isinstance(password, str) else None
    try:
        return urlsplit(text).password if "://" in text else None
    except ValueError:  # not a URL after all
        return None


def refused(env: Mapping[str, str], required: Collection[str] = ()) -> list[str]:
    """One line a variable that must not run production: a required or secret variable left
    empty, a placeholder anywhere, an example value as a secret or a password."""
    problems = [f"{name} is not set" for name in sorted(required) if name not in env]
    for name, value in sorted(env.items()):
        secret = bool(_SECRET_NAME.search(name))
        if not value.strip():
            if secret or name in required:
                problems.append(f"{name} is empty")
        elif PLACEHOLDER_MARK in value.lower() or (secret and is_example(value)):
            problems.append(f"{name} has an example value (from .env.example or a default)")
        elif (password := _embedded_password(value)) and is_example(password):
            problems.append(f"{name} holds an example password (from .env.example or a default)")
    return problems


def check_secrets(env: Mapping[str, str] | None = None, required: Collection[str] = ()) -> None:
    """Raise ``SecretsError`` naming every refused variable, in the production profile;
    other profiles run on a laptop with no secret at all."""
    env = os.environ if env is None else env
    if env.get("MLOPS_PROFILE", "local").strip().lower() != PROFILE_CHECKED:
        return
    problems = refused(env, required)
    if problems:
        raise SecretsError(
            "refusing to start the production profile with secrets anyone can read:\n  "
            + "\n  ".join(problems)
            + "\nset values of your own in .env or the Secret (.env.example says how to make them)"
        )
