"""generate_leads: plan the campaigns, make their leads, inject the defects, and write
one workbook per campaign."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.config import GenerationConfig
from generators.draws import anomaly_count, seeded_faker
from generators.leads.anomalies import inject_anomalies, pick_duplicates
from generators.leads.campaigns import plan_campaigns
from generators.leads.platform_match import PlatformTables
from generators.leads.records import make_leads
from generators.leads.styles import plan_styles
from generators.leads.workbook import write_workbook

# Separates this simulator's random stream from the platform's and the logs'.
_STREAM = 0x1EAD5
_ANOMALY_KINDS = ("duplicate_lead", "missing_contact", "invalid_email", "invalid_cuit")


@dataclass(frozen=True)
class LeadsSummary:
    """What generate_leads wrote: tests compare it with what the warehouse finds."""

    files: int
    leads: int  # data rows written, duplicates included
    anomalies: dict[str, int]  # quarantine reason code -> rows injected


def generate_leads(
    config: GenerationConfig, platform: PlatformTables, out_dir: Path
) -> LeadsSummary:
    """Write one lead workbook per campaign into out_dir and say what was injected."""
    rng = np.random.default_rng([config.seed, _STREAM])
    fake = seeded_faker(config.seed + _STREAM)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_files, n_rows = config.scale.lead_files, config.scale.leads
    if n_files <= 0 or n_rows <= 0:
        return LeadsSummary(files=0, leads=0, anomalies=dict.fromkeys(_ANOMALY_KINDS, 0))

    rates = config.anomalies
    n_duplicates = anomaly_count(rates.lead_duplicate, n_rows) if n_files > 1 else 0
    campaigns = plan_campaigns(config, rng)
    leads = make_leads(config, platform, campaigns, n_rows - n_duplicates, fake, rng)
    injected = inject_anomalies(leads, rates, n_rows, rng)
    repeated_in = pick_duplicates(leads, campaigns, n_duplicates, injected, rng)
    counts = {
        "duplicate_lead": len(repeated_in),
        **{kind: len(injected[kind]) for kind in _ANOMALY_KINDS[1:]},
    }

    # first + last name: fake.name() adds titles like "Dr(a)." that no CRM owner field shows
    owners = [f"{fake.first_name()} {fake.last_name()}" for _ in range(6)]
    styles = plan_styles(len(campaigns), rng)
    written = 0
    for index, (campaign, style) in enumerate(zip(campaigns, styles, strict=True)):
        originals = np.flatnonzero(leads.campaign_idx == index).tolist()
        duplicates = [lead for lead, target in repeated_in.items() if target == index]
        written += write_workbook(
            out_dir / campaign.file_name, campaign, style, leads, originals, duplicates,
            campaigns, owners, rng,
        )  # fmt: skip
    return LeadsSummary(files=len(campaigns), leads=written, anomalies=counts)
