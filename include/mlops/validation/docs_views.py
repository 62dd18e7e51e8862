"""GX's Data Docs views with one Jinja bytecode cache per process, and an index built from
each day's row (see data_docs).

GX builds a new Jinja ``Environment`` for every page it renders, so each page parses and
compiles the same templates again. A bytecode cache keyed by template name and source
checksum is the extension point Jinja offers for exactly this; GX's site configuration lets
a site name its view classes, which is how these are plugged in.

GX's index builder reads and deserialises every listed validation result (up to
``INDEX_DAYS``, about 17 kB of JSON each) to take four fields from it. ``RowIndexBuilder``
takes them from the small row ``publish_data_docs`` writes beside each result instead; a
result without a row (written before rows were) is read as GX reads it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
)
from great_expectations.render.renderer.site_builder import (
    FALSEY_YAML_STRINGS,
    DefaultSiteIndexBuilder,
    _resolve_asset_name,
)
from great_expectations.render.util import resource_key_passes_run_name_filter
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class _MemoryBytecodeCache(BytecodeCache):
    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


_CACHE = _MemoryBytecodeCache()


class CachedPageView(DefaultJinjaPageView):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _CACHE


class CachedIndexPageView(DefaultJinjaIndexPageView):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _CACHE


def index_row(result_json: dict[str, Any]) -> dict[str, Any]:
    """What the index shows of a validation result (its JSON dict)."""
    meta = result_json.get("meta") or {}
    batch_kwargs, batch_spec = meta.get("batch_kwargs") or {}, meta.get("batch_spec") or {}
    asset = batch_kwargs.get("data_asset_name") or batch_spec.get("data_asset_name")
    if not asset:  # fluent datasources keep it in the active batch definition only
        asset = (meta.get("active_batch_definition") or {}).get("data_asset_name")
    return {
        "run_id": meta.get("run_id"),
        "success": result_json.get("success"),
        "asset_name": asset,
        "batch_kwargs": batch_kwargs,
        "batch_spec": batch_spec,
    }


def row_path(rows_directory: str, batch_identifier: str) -> str:
    return os.path.join(rows_directory, f"{batch_identifier}.json")


class RowIndexBuilder(DefaultSiteIndexBuilder):
    """GX's index, each validation's row from ``rows_directory`` (one file per batch, its
    run id checked against the result's key)."""

    # GX builds it from its configuration by the names of the arguments: spelled out here
    def __init__(  # noqa: PLR0913
        self,
        name: str,
        site_name: str,
        data_context: Any,
        target_store: Any,
        site_section_builders_config: Any,
        rows_directory: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name, site_name, data_context, target_store, site_section_builders_config, **kwargs
        )
        self.rows_directory = rows_directory

    def _add_validations_to_index_links(self, index_links_dict: Any, site_keys: list) -> None:
        validations = self.site_section_builders_config.get("validations", "None")
        if not validations or validations in FALSEY_YAML_STRINGS:
            return
        name_filter = self.site_section_builders_config["validations"]["run_name_filter"]
        keys = [k for k in site_keys if resource_key_passes_run_name_filter(k, name_filter)]
        keys.sort(key=lambda k: k.run_id.run_time, reverse=True)
        for key in keys[: self.validation_results_limit or None]:
            row = self._row(key)
            if row is None:
                continue
            self.add_resource_info_to_index_links_dict(
                index_links_dict=index_links_dict,
                expectation_suite_name=key.expectation_suite_identifier.name,
                section_name="validations",
                batch_identifier=key.batch_identifier,
                run_id=key.run_id,
                validation_success=row["success"],
                run_time=key.run_id.run_time,
                run_name=key.run_id.run_name,
                asset_name=row["asset_name"],
                batch_kwargs=row["batch_kwargs"],
                batch_spec=row["batch_spec"],
            )

    def _row(self, key: Any) -> dict[str, Any] | None:
        try:
            with open(row_path(self.rows_directory, key.batch_identifier)) as file:
                row = json.load(file)
        except (OSError, ValueError):
            row = None
        if row and row.get("run_id") == key.run_id.to_json_dict():
            return row
        result = self.data_context.get_validation_result(  # GX's own way
            batch_identifier=key.batch_identifier,
            expectation_suite_name=key.expectation_suite_identifier.name,
            run_id=key.run_id,
            validation_results_store_name=self.source_stores.get("validations"),
        )
        if not isinstance(result, ExpectationSuiteValidationResult):
            return None  # GX skips a result it cannot read yet, with a warning
        return {
            "success": result.success,
            "asset_name": _resolve_asset_name(result),
            "batch_kwargs": result.meta.get("batch_kwargs", {}),
            "batch_spec": result.meta.get("batch_spec", {}),
        }
