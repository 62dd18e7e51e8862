"""Connection arguments for a SQLite metadata DB, named by ``[database] sql_alchemy_connect_args``.

Airflow imports this dict by its dotted path. SQLite lets one writer at a time; sqlite3's
default 5 s busy timeout is shorter than a scheduler, a dag-processor, a triggerer and an
api-server writing together on 2 cores can make a writer wait ("database is locked").
"""

from __future__ import annotations

SQLITE: dict[str, float] = {"timeout": 60.0}
