"""Write all three simulated sources for one configuration: `b2b generate`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from b2b_common.errors import UserError
from generators.config import GenerationConfig
from generators.findings import expected_findings
from generators.leads import LeadsSummary, generate_leads
from generators.platform import PlatformData, generate_platform
from generators.weblogs import WeblogSummary, generate_weblogs
from source_db import SourceDatabase


class GenerationError(UserError):
    """A user-fixable problem with the generation request (directory, URL)."""


@dataclass(frozen=True)
class GenerationSummary:
    """What `b2b generate` wrote, with timings, for the one-screen summary."""

    out_dir: Path
    source_db_url: str
    table_rows: dict[str, int]
    injected: dict[str, int]
    weblogs: WeblogSummary
    leads: LeadsSummary
    # the quarantine counts the warehouse will show: (source, entity, reason, action) -> n
    findings: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def default_source_db_url(out_dir: Path) -> str:
    return f"sqlite:///{out_dir / 'source' / 'b2b_platform.db'}"


def generate_sources(
    config: GenerationConfig, out_dir: Path, source_db_url: str | None = None
) -> GenerationSummary:
    """Generate the platform database, the web logs and the lead workbooks under out_dir.

    Re-running with the same configuration replaces what a previous run wrote, so the
    result depends only on the configuration.
    """
    out_dir = out_dir.resolve()
    _ensure_writable(out_dir)
    url = source_db_url or default_source_db_url(out_dir)
    database = SourceDatabase(url)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    database.create_schema(drop_existing=True)
    # The loader takes the tables as they are made: big scales send orders month by month.
    with database.loader() as load:
        platform: PlatformData = generate_platform(config, sink=load)
    table_rows = load.counts
    seconds["platform_db"] = time.perf_counter() - started

    started = time.perf_counter()
    weblog_dir = out_dir / "weblogs"
    _clear(weblog_dir, ("access-*.log", "access-*.log.gz", "access.log-*"))
    weblogs = generate_weblogs(config, platform, weblog_dir)
    seconds["weblogs"] = time.perf_counter() - started

    started = time.perf_counter()
    leads_dir = out_dir / "leads"
    _clear(leads_dir, ("*.xlsx",))
    leads = generate_leads(config, platform, leads_dir)
    seconds["leads"] = time.perf_counter() - started

    return GenerationSummary(
        out_dir=out_dir,
        source_db_url=database.redacted_url,
        table_rows=table_rows,
        injected=platform.injected,
        weblogs=weblogs,
        leads=leads,
        findings=dict(expected_findings(config, platform, weblogs.rejected_lines, leads.anomalies)),
        seconds=seconds,
    )


def _ensure_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenerationError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc
    if not os.access(out_dir, os.W_OK):
        raise GenerationError(f"output directory {out_dir} is not writable: pick another --out")


def _clear(directory: Path, patterns: tuple[str, ...]) -> None:
    """Remove files a previous generation wrote, so stale days or campaigns do not linger."""
    if not directory.exists():
        return
    for pattern in patterns:
        for path in directory.glob(pattern):
            path.unlink()
