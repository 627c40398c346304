"""Marketing-lead spreadsheets: one messy .xlsx per campaign export.

The files look typed and exported by people: a title above the header in some,
Spanish or English header names with stray case, spacing and accents, columns in
any order, extra columns, blank rows, dates as Excel dates or `dd/mm/yyyy` text,
CUITs with or without dashes or stored as numbers, phones in many styles.

The story behind them: about a third of the leads are companies already on the
platform, captured before some of their orders, so lead-to-customer conversion is
measurable; the rest are prospects with fresh, valid CUITs. Duplicates, missing
contacts, invalid emails and invalid CUITs are injected at the configured rates,
on disjoint leads, so each one maps to exactly one warehouse reason code.

Determinism: one numpy generator and one seeded Faker drive every choice, and the
workbooks are written by xlsxwriter in memory (fixed zip timestamps) with the
creation date set from the campaign, so the same config gives byte-identical files.

Modules, in the order generate_leads (simulator) uses them: campaigns, records (with
platform_match, prospects and contacts), anomalies, styles, then workbook and cells.
"""

from generators.leads.campaigns import CHANNEL_LABELS
from generators.leads.platform_match import PlatformTables
from generators.leads.simulator import LeadsSummary, generate_leads
from generators.leads.styles import HEADER_ALIASES, LEAD_FIELDS

__all__ = [
    "CHANNEL_LABELS",
    "HEADER_ALIASES",
    "LEAD_FIELDS",
    "LeadsSummary",
    "PlatformTables",
    "generate_leads",
]
