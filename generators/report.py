"""The one-screen summary `b2b generate` prints."""

from __future__ import annotations

from generators.config import GenerationConfig
from generators.sources import GenerationSummary


def format_summary(config: GenerationConfig, scale: str, summary: GenerationSummary) -> str:
    total = sum(summary.seconds.values())
    log_seconds = summary.seconds.get("weblogs", 0.0)
    lines = [
        f"Generated scale '{scale}' (seed {config.seed}) for {config.first_day} .. {config.as_of}"
        f" into {summary.out_dir} in {total:.1f} s",
        f"  set B2B_FIRST_MONTH={config.first_month} to load exactly this range",
        "",
        f"Platform database  {summary.source_db_url}  ({summary.seconds.get('platform_db', 0):.1f} s)",
    ]
    lines += [f"  {table:<18} {rows:>12,}" for table, rows in summary.table_rows.items()]
    lines += [
        "",
        f"Web logs           {summary.out_dir / 'weblogs'}  ({log_seconds:.1f} s,"
        f" {summary.weblogs.lines / max(log_seconds, 1e-9):,.0f} lines/s)",
        f"  {'files':<18} {summary.weblogs.files:>12,}",
        f"  {'lines':<18} {summary.weblogs.lines:>12,}",
        f"  {'bytes':<18} {summary.weblogs.bytes_written:>12,}",
        "",
        f"Lead workbooks     {summary.out_dir / 'leads'}  ({summary.seconds.get('leads', 0):.1f} s)",
        f"  {'files':<18} {summary.leads.files:>12,}",
        f"  {'rows':<18} {summary.leads.leads:>12,}",
        "",
        "Injected anomalies (the warehouse must find every one)",
    ]
    anomalies = {
        **summary.injected,
        **{f"log: {k}": v for k, v in summary.weblogs.malformed_lines.items()},
        **{f"leads: {k}": v for k, v in summary.leads.anomalies.items()},
    }
    lines += [f"  {kind:<30} {count:>8,}" for kind, count in anomalies.items()]
    return "\n".join(lines)
