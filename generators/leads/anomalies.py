"""The defects injected into leads, each on its own leads so each maps to exactly one
warehouse reason code: missing contacts, invalid emails, invalid CUITs and re-exports."""

from __future__ import annotations

import numpy as np

from b2b_common.text import fold_accents
from generators.config import AnomalyRates
from generators.draws import anomaly_count, with_wrong_check_digit
from generators.leads.campaigns import Campaign
from generators.leads.records import Leads


def inject_anomalies(
    leads: Leads, rates: AnomalyRates, n_rows: int, rng: np.random.Generator
) -> dict[str, set[int]]:
    """Disjoint sets of distinct leads carrying each defect, applied in place."""
    count = len(leads.lead_id)
    free = np.ones(count, dtype=bool)

    def take(wanted: int, eligible: np.ndarray) -> set[int]:
        pool = np.flatnonzero(free & eligible)
        chosen = rng.choice(pool, min(wanted, len(pool)), replace=False) if len(pool) else pool
        free[chosen] = False
        return set(chosen.tolist())

    everyone = np.ones(count, dtype=bool)
    missing = take(anomaly_count(rates.lead_missing_contact, n_rows), everyone)
    for i in sorted(missing):
        leads.email[i] = None
        leads.phone[i] = None

    bad_email = take(anomaly_count(rates.lead_invalid_email, n_rows), everyone)
    kinds = rng.integers(0, 7, count)
    for i in sorted(bad_email):
        first = (leads.contact_name[i] or "juan").split()[0].strip(",").lower()
        leads.email[i] = _invalid_email(leads.email[i], fold_accents(first), int(kinds[i]))
        if leads.phone[i] is None:  # keep it reachable: otherwise it is a missing contact
            leads.phone[i] = ("11", str(int(rng.integers(40_000_000, 70_000_000))))

    # Mistyped check digits go on prospects, so every platform match stays matchable.
    bad_cuit = take(anomaly_count(rates.lead_invalid_cuit, n_rows), leads.matched_company_id < 0)
    shifts = rng.integers(1, 10, count)
    for i in sorted(bad_cuit):
        leads.cuit[i] = with_wrong_check_digit(leads.cuit[i], int(shifts[i]))
    return {"missing_contact": missing, "invalid_email": bad_email, "invalid_cuit": bad_cuit}


def _invalid_email(email: str | None, first: str, kind: int) -> str:
    """An email a person typed wrong; each fails `^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$`."""
    local, _, domain = (email or f"{first}@gmail.com").partition("@")
    return (
        f"{local}@",
        "sin mail",
        f"{local}@{domain.split('.')[0]}",
        f"{local}@@{domain}",
        f"{local}.{domain}",
        f"{local.replace('.', ' ')} @{domain}",
        "no tiene",
    )[kind]


def pick_duplicates(
    leads: Leads,
    campaigns: list[Campaign],
    n_duplicates: int,
    injected: dict[str, set[int]],
    rng: np.random.Generator,
) -> dict[int, int]:
    """Clean leads exported again in another campaign's file that was exported after
    capture: lead -> the campaign whose file repeats it."""
    if n_duplicates <= 0:
        return {}
    defective = set().union(*injected.values())
    exported = np.array([c.exported_at for c in campaigns], dtype="datetime64[m]")
    captured = np.array(leads.captured, dtype="datetime64[m]")
    eligible = (exported[None, :] >= captured[:, None]) & (
        np.arange(len(campaigns))[None, :] != leads.campaign_idx[:, None]
    )
    clean = np.array([i not in defective for i in range(len(captured))])
    candidates = np.flatnonzero(clean & eligible.any(axis=1))
    chosen = rng.choice(candidates, min(n_duplicates, len(candidates)), replace=False)
    return {int(i): int(rng.choice(np.flatnonzero(eligible[i]))) for i in sorted(chosen.tolist())}
