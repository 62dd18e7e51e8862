"""The GX Data Docs site of the daily validations, kept in one local folder.

Each task run is a fresh process, and GX rebuilds a site only from what its stores hold, so
the validation results must outlive the process: they are kept as JSON next to the site
(``<site>/_gx_validation_results``) and every run adds its day and renders two pages, its
own validation and the index. The index lists every stored day, so the site accumulates a
backfill one partition at a time without re-rendering old pages. A result is keyed by the
day (run name ``YYYY-MM-DD``, run time midnight UTC), so a rerun of a day replaces its page
instead of adding a second one.

Rendering is most of the cost of a page: GX compiles its Jinja templates anew for every
page (a fresh Environment per view), about 70 % of the time. The views below share one
in-memory bytecode cache per process, so a template is compiled once. The index lists the
``INDEX_DAYS`` most recent days only (older pages stay on disk), so that rendering it does
not grow with the length of a backfill, and from each day's row (``<site>/_gx_index_rows``,
written with its result: the status, the asset) rather than from every full result
(``docs_views.RowIndexBuilder``).

Only a local folder is supported here; a caller with a remote docs zone copies the folder
down and back up around the call.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from mlops.validation.suite import BATCH, RULE, SCOPE

if TYPE_CHECKING:
    import great_expectations as gx
    import numpy as np
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier

    from mlops.validation.rules import RowCheck

SITE_NAME = "transactions"
INDEX_DAYS = 90
RESULTS_FOLDER = "_gx_validation_results"
ROWS_FOLDER = "_gx_index_rows"  # what the index shows of each result
PAGES_FOLDER = "validations"  # the site's page per validated day
BATCH_PREFIX = "transactions"


def run_identifier(day: date) -> RunIdentifier:
    """The day's run id: deterministic, so reruns overwrite rather than pile up."""
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(
        run_name=day.isoformat(), run_time=datetime.combine(day, time(), tzinfo=UTC)
    )


def publish_data_docs(
    result_json: dict[str, Any],
    suite: gx.ExpectationSuite,
    *,
    day: date,
    data_docs_dir: str,
) -> str:
    """Store the result (``result.to_json_dict()``) under the site folder and render its
    page and the index.

    The result comes as its JSON dict, the form the report keeps too: converting a result
    walks every expectation's configuration and outcome, and is done once per run.
    Returns the path of ``index.html``. Concurrent runs of different days write different
    result files; the index written last lists every result stored at that moment (GX skips,
    with a warning, a result file it cannot read yet).
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    if "://" in data_docs_dir and not data_docs_dir.startswith("file://"):
        raise ValueError(f"data_docs_dir must be a local folder, got {data_docs_dir!r}")
    root = os.path.abspath(data_docs_dir.removeprefix("file://"))
    context = _context(root)
    context.suites.add(suite)
    suite_key = ExpectationSuiteIdentifier(name=suite.name)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_key,
        run_id=run_identifier(day),
        batch_identifier=f"{BATCH_PREFIX}-{day.isoformat()}",
    )
    # The store serialises what ``to_json_dict`` gives: hand it the dict made already.
    context.validation_results_store.set(key, _JsonResult(result_json))
    _write_row(root, key.batch_identifier, result_json)
    context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[key])
    return os.path.join(root, "index.html")


def add_mask_counts(
    result: ExpectationSuiteValidationResult,
    masks: dict[RowCheck, np.ndarray | None],
    n_rows: int,
) -> None:
    """Give the Data Docs the counts of the row checks GX ran in BOOLEAN_ONLY (the masks are
    checked against GX's verdicts in ``run``, and against GX's own counts in the tests)."""
    by_key = {(c.rule, c.column): m for c, m in masks.items() if m is not None}
    for outcome in result.results:
        meta = outcome.expectation_config.meta or {}
        column = outcome.expectation_config.kwargs.get("column")
        mask = by_key.get((meta.get(RULE), column))
        if meta.get(SCOPE) == BATCH or mask is None or "observed_value" in outcome.result:
            continue
        if outcome.expectation_config.type.startswith("expect_column_m"):  # min/max
            continue
        count = int(mask.sum())
        outcome.result.update(
            {
                "element_count": n_rows,
                "unexpected_count": count,
                "unexpected_percent": 100.0 * count / n_rows if n_rows else 0.0,
            }
        )


def _write_row(root: str, batch_identifier: str, result_json: dict[str, Any]) -> None:
    """The day's index row, renamed into place (a reader finds the old row or the new)."""
    import json

    from mlops.validation.docs_views import index_row, row_path

    path = row_path(os.path.join(root, ROWS_FOLDER), batch_identifier)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.tmp", "w") as file:
        json.dump(index_row(result_json), file, default=str)
    os.replace(f"{path}.tmp", path)


class _JsonResult:
    """A validation result already converted to its JSON dict, as the store takes it."""

    def __init__(self, json_dict: dict[str, Any]) -> None:
        self._json_dict = json_dict

    def to_json_dict(self) -> dict[str, Any]:
        return self._json_dict


def _context(root: str) -> Any:
    """An in-memory context except for the validation results, which live beside the site."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": os.path.join(root, RESULTS_FOLDER),
        },
    }
    views = "mlops.validation.docs_views"
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": root},
        "site_index_builder": {
            "module_name": views,
            "class_name": "RowIndexBuilder",
            "rows_directory": os.path.join(root, ROWS_FOLDER),
            "validation_results_limit": INDEX_DAYS,
            "view": {"module_name": views, "class_name": "CachedIndexPageView"},
        },
        # The suite's own page would be re-rendered every day (its time window moves) and
        # says nothing the validation page does not: every expectation with its arguments.
        "site_section_builders": {
            "expectations": "None",
            "validations": {"view": {"module_name": views, "class_name": "CachedPageView"}},
        },
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={SITE_NAME: site},
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)
