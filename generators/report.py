"""The one-screen summary `b2b generate` prints."""

from __future__ import annotations

from b2b_common.dates import add_months
from generators.config import GenerationConfig
from generators.sources import GenerationSummary
from generators.weblogs import REJECTED_KINDS


def format_summary(config: GenerationConfig, scale: str, summary: GenerationSummary) -> str:
    total = sum(summary.seconds.values())
    log_seconds = summary.seconds.get("weblogs", 0.0)
    lines = [
        f"Generated scale '{scale}' (seed {config.seed}) for {config.first_day} .. {config.as_of}"
        f" into {summary.out_dir} in {total:.1f} s",
        *_range_hint(config),
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
        f"What the warehouse will find (quarantine records), loading with B2B_AS_OF={config.as_of}",
        f"  {'source':<12} {'entity':<12} {'reason':<24} {'action':<9} {'records':>8}",
    ]
    order = {"platform_db": 0, "weblogs": 1, "leads": 2}
    ranked = sorted(summary.findings.items(), key=lambda f: (order[f[0][0]], f[0][1], -f[1]))
    lines += [
        f"  {source:<12} {entity:<12} {reason:<24} {action:<9} {count:>8,}"
        for (source, entity, reason, action), count in ranked
    ]
    kept = {k: v for k, v in summary.weblogs.malformed_lines.items() if k not in REJECTED_KINDS}
    lines += [
        "  The lines of a rejected order are rejected with it, under the order's reason.",
        "  Customers with the same document are merged, planted duplicates or not.",
        f"  Log lines after 21:00 server time on {config.as_of} are the next day in UTC: future.",
        f"  Without B2B_AS_OF, a run during {config.as_of} cuts off at the moment it starts,",
        "  and the orders and log lines stamped later that day are quarantined as future too.",
        "",
        "Odd but valid log lines the parser must read (loaded, not quarantined)",
        "  " + ", ".join(f"{kind} {count:,}" for kind, count in kept.items()),
    ]
    return "\n".join(lines)


def _range_hint(config: GenerationConfig) -> list[str]:
    """The B2B_FIRST_MONTH to set, only when the warehouse's default differs from the data."""
    default = f"{add_months(config.as_of, -12):%Y-%m}"
    if default == config.first_month:
        return []
    return [
        f"  set B2B_FIRST_MONTH={config.first_month} before `b2b run`: the warehouse would start"
        f" at {default} and load the orders planted before {config.first_month} as valid"
    ]
