"""The current version of every source a raw asset reads, computed the way its step
computes it: what `b2b run` compares with the recorded versions to find stale slices.

Cheap by design: aggregate queries against the platform database (no rows move),
directory listings for the log files, the lead workbooks and the exported reports.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import dagster as dg

from b2b_platform.defs.leads.raw import KEY as LEADS_KEY
from b2b_platform.defs.leads.raw import lead_files
from b2b_platform.defs.platform_db.fingerprints import source_fingerprints, table_fingerprint
from b2b_platform.defs.platform_db.raw import SNAPSHOT_TABLES
from b2b_platform.defs.reports.report_files import KEY as REPORT_FILES_KEY
from b2b_platform.defs.weblogs.log_files import list_log_files, month_version
from b2b_platform.defs.weblogs.raw import KEY as WEBLOGS_KEY
from b2b_platform.lib.input_files.file_manifest import listing_version
from b2b_platform.lib.orchestration.stale_slices import SourceVersions
from b2b_platform.lib.report_files.directory import export_version
from b2b_platform.lib.resources import CalendarResource, DirectoryResource, SourceDatabaseResource
from b2b_platform.lib.settings import Settings
from b2b_platform.lib.warehouse.slice_versions import digest

T = TypeVar("T")


def source_versions(settings: Settings, selected: set[dg.AssetKey] | None) -> SourceVersions:
    """(asset key, partition key) -> its source's version, for the selected raw assets
    (every asset that reads a source when `selected` is None). A source that cannot be
    read now gets no version (None): its slices are rebuilt, and the step then fails with
    the source's own message."""
    names = {key.to_user_string() for key in selected} if selected is not None else _READING_SOURCES
    found: dict[tuple[str, str | None], str | None] = {}
    source_db = SourceDatabaseResource(
        url=settings.source_db_url, aggregates_dir=str(settings.aggregates_dir)
    )
    calendar = CalendarResource.from_settings(settings)
    months = calendar.monthly_partitions().get_partition_keys()
    tables = [table for table in SNAPSHOT_TABLES if f"raw/{table}" in names]
    orders = bool(names & {"raw/orders", "raw/order_items"})
    # the source works on both cores: the orders' two queries (the longest, run at once)
    # beside the snapshot tables, one after the other
    with ThreadPoolExecutor(max_workers=2) as pool:
        by_month = (
            pool.submit(
                _or_none, lambda: source_fingerprints(source_db, months, calendar.load_cutoff)
            )
            if orders
            else None
        )
        versions = pool.map(lambda t: _or_none(lambda: table_fingerprint(source_db, t)[1]), tables)
        found |= {
            (f"raw/{table}", None): version for table, version in zip(tables, versions, strict=True)
        }
        fingerprints = by_month.result() if by_month else None
    if orders:
        for month in months:
            version = digest(fingerprints[month].text) if fingerprints else None
            found[("raw/orders", month)] = found[("raw/order_items", month)] = version
    if WEBLOGS_KEY.to_user_string() in names:
        directory = _or_none(lambda: list_log_files(DirectoryResource(path=str(settings.log_dir))))
        for month in months:
            found[(WEBLOGS_KEY.to_user_string(), month)] = (
                month_version(directory, month, list(months), calendar.load_cutoff)
                if directory
                else None
            )
    if LEADS_KEY.to_user_string() in names:
        listing = _or_none(lambda: lead_files(DirectoryResource(path=str(settings.leads_dir))))
        found[(LEADS_KEY.to_user_string(), None)] = (
            listing_version(listing.files, listing.skipped) if listing else None
        )
    if REPORT_FILES_KEY.to_user_string() in names:
        report_dir = DirectoryResource(path=str(settings.report_dir)).directory
        found[(REPORT_FILES_KEY.to_user_string(), None)] = export_version(report_dir)
    return found


_READING_SOURCES = {
    *(f"raw/{table}" for table in SNAPSHOT_TABLES), "raw/orders", "raw/order_items",
    WEBLOGS_KEY.to_user_string(), LEADS_KEY.to_user_string(), REPORT_FILES_KEY.to_user_string(),
}  # fmt: skip


def _or_none(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except Exception:  # the run's step reports it properly
        return None
