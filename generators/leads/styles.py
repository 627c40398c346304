"""How each lead file looks: rows above the header, header names and their language,
column order, extra columns, date and channel styles, sort order and sheet name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from b2b_common.text import fold_accents
from generators.draws import spread

LEAD_FIELDS: tuple[str, ...] = (
    "lead_id", "captured_at", "campaign", "channel", "company_name", "cuit",
    "contact_name", "email", "phone", "country", "province", "city", "industry",
)  # fmt: skip

# Header names people use for each canonical field. The warehouse may use this as a
# test oracle, but should match headers after folding case, accents and punctuation.
HEADER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "lead_id": {"es": ("ID Lead", "Nro. Lead", "Id de lead"), "en": ("Lead ID", "lead_id")},
    "captured_at": {
        "es": ("Fecha", "Fecha de captura", "Fecha alta"),
        "en": ("Captured At", "Date", "captured_at"),
    },
    "campaign": {"es": ("Campaña", "Campana", "Nombre campaña"), "en": ("Campaign",)},
    "channel": {"es": ("Canal", "Medio"), "en": ("Channel", "Source")},
    "company_name": {
        "es": ("Razón Social", "Empresa", "Razon social", "Compañía"),
        "en": ("Company Name", "Company"),
    },
    "cuit": {"es": ("CUIT", "C.U.I.T.", "Cuit", "Nro. CUIT"), "en": ("CUIT", "Tax ID (CUIT)")},
    "contact_name": {
        "es": ("Nombre de contacto", "Contacto", "Nombre y apellido"),
        "en": ("Contact Name", "Contact", "Full Name"),
    },
    "email": {
        "es": ("Correo electrónico", "Email", "Mail", "Correo"),
        "en": ("Email", "E-mail", "Email Address"),
    },
    "phone": {"es": ("Teléfono", "Telefono", "Tel.", "Celular"), "en": ("Phone", "Phone Number")},
    "country": {"es": ("País", "Pais"), "en": ("Country",)},
    "province": {"es": ("Provincia", "Prov."), "en": ("Province", "State")},
    "city": {"es": ("Ciudad", "Localidad"), "en": ("City",)},
    "industry": {"es": ("Rubro", "Industria", "Sector"), "en": ("Industry",)},
}

_EXTRA_COLUMNS = ("Notas", "Owner", "Score", "Estado", "Comentarios", "Responsable")
_SHEET_NAMES = ("Leads", "Hoja1", "Sheet1", "Export", "Datos")
_EXCEL_DATE_FORMATS = ("dd/mm/yyyy hh:mm", "dd/mm/yyyy", "yyyy-mm-dd hh:mm:ss", "d/m/yyyy h:mm")


@dataclass(frozen=True)
class FileStyle:
    header_offset: int  # rows above the header
    language: str  # es, en, mixed
    date_style: str  # excel, text, mixed
    date_format: str
    channel_style: str  # code, es, en
    extras: tuple[str, ...]
    columns: tuple[str, ...]
    headers: tuple[str, ...]
    sort_by_company: bool
    sheet_name: str


def plan_styles(count: int, rng: np.random.Generator) -> list[FileStyle]:
    """A style per file; each layout, language, date style and number of extra columns
    shows up once there are files enough."""
    offsets = spread([0, 1, 2, 3], count, rng)
    languages = spread(["es", "en", "mixed"], count, rng)
    date_styles = spread(["excel", "text", "mixed"], count, rng)
    extras_count = spread([0, 1, 2, 3], count, rng)
    styles = []
    for i in range(count):
        extras = tuple(
            str(x) for x in rng.choice(_EXTRA_COLUMNS, extras_count[i], replace=False).tolist()
        )
        columns = _column_order([*LEAD_FIELDS, *extras], rng)
        headers = [_header(column, languages[i], rng) for column in columns]
        styles.append(
            FileStyle(
                header_offset=offsets[i] + (1 if offsets[i] == 3 and rng.random() < 0.5 else 0),
                language=languages[i],
                date_style=date_styles[i],
                date_format=str(rng.choice(_EXCEL_DATE_FORMATS)),
                channel_style=("code", "es", "en")[int(rng.integers(3))],
                extras=extras,
                columns=tuple(columns),
                headers=tuple(headers),
                sort_by_company=bool(rng.random() < 0.2),
                sheet_name=str(rng.choice(_SHEET_NAMES)),
            )
        )
    return styles


def _column_order(fields: list[str], rng: np.random.Generator) -> list[str]:
    """Half the files shuffle their columns; the others barely touch the tool's order."""
    if rng.random() < 0.5:
        return [fields[j] for j in rng.permutation(len(fields))]
    # the tool's own order with a couple of columns dragged around
    columns = fields[:]
    for _ in range(2):
        one, other = rng.integers(0, len(columns), 2)
        columns[one], columns[other] = columns[other], columns[one]
    return columns


def _header(column: str, file_language: str, rng: np.random.Generator) -> str:
    """A column's header: extra columns as named, lead fields by one of their aliases."""
    if column not in HEADER_ALIASES:
        return column
    language = file_language if file_language != "mixed" else ("es", "en")[rng.integers(2)]
    options = HEADER_ALIASES[column][language]
    return _decorate_header(options[int(rng.integers(len(options)))], rng)


def _decorate_header(text: str, rng: np.random.Generator) -> str:
    """Stray case, accents and spaces, as typed by hand."""
    draws = rng.random(5)
    if draws[0] < 0.15:
        text = text.upper()
    elif draws[0] < 0.25:
        text = text.lower()
    if draws[1] < 0.1:
        text = fold_accents(text)
    if draws[2] < 0.08:
        text = text.replace(" ", "  ")
    if draws[3] < 0.1:
        text = text + " "
    if draws[4] < 0.05:
        text = " " + text
    return text
