"""Text as people type it, compared without accents."""

from __future__ import annotations

import unicodedata


def fold_accents(text: str) -> str:
    """`text` without accents or other marks, in ASCII ("Campaña" -> "Campana")."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
