"""Passwords never shown: the one masking every message, error and listing goes through
before it shows a connection setting (the warehouse location, the source database URL)
or a driver's error that may quote one.

Both ways libpq takes a password are masked: `password=...` in a key=value conninfo
(plain, or single-quoted with spaces and backslash escapes), and in a URI, as
`scheme://user:password@host` or a `?password=` / `&password=` query parameter. A
driver may also quote a password in another form (decoded, unquoted): the values the
settings hold, from `passwords_of`, are masked wherever they appear.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

# `password=value` in a key=value conninfo, or `?password=` / `&password=` in a URI's
# query. libpq allows spaces around `=`; a quoted value may hold spaces and `\'`; an
# unquoted one ends at a space unless escaped (`\ `). In a query the value ends at `&`.
# Any word ending in password counts (PGPASSWORD=, db_password=): masking more is safe.
# In a text, an unquoted value also ends at `"`, where drivers close the conninfo they
# quote; a setting's own value runs on, and `passwords_of` hands it to `mask_secrets`
# whole. A value masked already stays as it is, with the punctuation after it, so that
# a message masked where it was raised and again where it is shown reads the same.
_PARAMETER = r"""
    (?P<key>(?P<query>[?&])?password\s*=\s*)
    (?P<value>
        \*\*\*(?=[\s"',;:)&]|$)             # masked already
        | '(?:[^'\\]|\\[\s\S])*'?          # quoted; an unterminated quote runs to the end
        | (?(query)[^&\#\s{stop}]*         # a URI query parameter
          | (?:\\[\s\S]|[^\s\\{stop}])*)   # a key=value conninfo
    )
"""
_PASSWORD_PARAMETER = re.compile(_PARAMETER.format(stop='"'), re.IGNORECASE | re.VERBOSE)
_SETTING_PASSWORD_PARAMETER = re.compile(_PARAMETER.format(stop=""), re.IGNORECASE | re.VERBOSE)
# `scheme://user:password@host`: libpq reads the user information up to the last `@`
# before the first `/`, so the password may hold `:`, `?` and `@` as written
_URI_PASSWORD = re.compile(r"(?P<key>://[^\s:/?#@]*:)(?P<value>[^\s/]*)(?=@)")
# the same, as a setting holds it: a password written with spaces still is one
_SETTING_URI_PASSWORD = re.compile(r"://[^\s:/?#@]*:(?P<value>[^/]*)@")
# a query parameter, as a setting holds it: all of it up to the next parameter
_SETTING_QUERY_PASSWORD = re.compile(r"[?&]password=(?P<value>[^&#]*)", re.IGNORECASE)


def mask_secrets(text: str, *known: str) -> str:
    """`text` with every password shown as ***: those it writes as `password=...` or in
    a URI, and every value in `known` wherever it appears (say a driver's error quoting
    the password it was given). Mask before cutting a text short: a cut-off password is
    no longer recognised."""
    # the known values first, whole (one with a space would otherwise be cut in two by
    # the patterns below), longest first, so that no part of a longer one survives
    for secret in sorted({s for s in known if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URI_PASSWORD.sub(lambda m: m["key"] + MASK, text)
    return _PASSWORD_PARAMETER.sub(lambda m: m["key"] + MASK, text)


def passwords_of(*settings: str) -> tuple[str, ...]:
    """The passwords the connection settings hold (conninfos, URLs), each as written and
    as a driver decodes it (unquoted, unescaped, percent-decoded): what `mask_secrets`
    is given so that an error quoting any of these forms shows none."""
    found: set[str] = set()
    for setting in settings:
        written = [m["value"] for m in _SETTING_PASSWORD_PARAMETER.finditer(setting)]
        written += [m["value"] for m in _SETTING_URI_PASSWORD.finditer(setting)]
        written += [m["value"] for m in _SETTING_QUERY_PASSWORD.finditer(setting)]
        for value in written:
            found |= {value, unquote(value)}
            if value.startswith("'"):
                value = value[1:].removesuffix("'")
                found.add(value)
            found.add(re.sub(r"\\([\s\S])", r"\1", value))
    found.discard("")
    return tuple(sorted(found, key=len, reverse=True))
