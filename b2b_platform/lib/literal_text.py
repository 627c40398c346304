"""Text from the data shown as text wherever people read it: in a chart of the web page,
in markdown on the Dagster asset page, in a terminal. Each of these reads some characters
as instructions (tags and links, escape sequences that recolour or clear the screen), so
a product name, device, campaign or file name goes through the function of its medium
and shows exactly as written, never as a link, a style or a command.

CSV and JSON outputs keep the raw values: programs read them, not people.
"""

from __future__ import annotations

import re

# Plotly labels (ticks, legend entries, hover text, annotations, titles) read a few HTML
# tags (<a href>, <b>, <span style>, <br>...) and then decode entities in the text
# between them, so an entity shows as its character and never starts a tag. `$...$` is
# TeX to Plotly when MathJax is on the page: written as an entity, it is never TeX.
_PLOTLY = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&#36;"})


def plotly_text(text: str) -> str:
    """A label that a chart shows as written: no link, no style, no line break from data."""
    return text.translate(_PLOTLY)


# C0 controls and DEL, C1 controls (0x9b alone starts a control sequence in many
# terminals), and the bidirectional overrides and isolates, which reorder the rest of the
# line (a file can read `exe.txt` and be `txt.exe`).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def terminal_text(text: str) -> str:
    """A value printed as itself: control characters and direction overrides are shown
    as escapes (`\\x1b`, `\\n`, `\\u202e`), so none can move the cursor, recolour or clear
    the screen, retitle the window, reorder the line or start a new one."""
    return _UNPRINTABLE.sub(_visible, text)


def terminal_lines(text: str, indent: str = "    ") -> str:
    """A message of several lines (an error) printed as itself: its line breaks kept,
    each line after the first indented so that it cannot pass for a line of its own."""
    lines = text.replace("\r\n", "\n").split("\n")
    return ("\n" + indent).join(terminal_text(line) for line in lines)


# Characters markdown may read as syntax (emphasis, code, links, images, headings, lists,
# tables, raw HTML and autolinks, entities, strikethrough): CommonMark shows any of them
# escaped with a backslash as the character itself.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:@])")
# GitHub-flavoured markdown (the Dagster UI's renderer among them) turns bare URLs and
# e-mail addresses into links after the escapes are read, so escaping cannot stop it. A
# word joiner, invisible and without width, between `:` and `//`, after `@` and between
# `www` and `.` breaks the patterns it looks for and leaves the text reading the same.
_AUTOLINK = re.compile(r":(?=/)|@|www(?=\.)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def markdown_text(text: str) -> str:
    """A table cell or heading that markdown shows as written: no link, image, HTML,
    emphasis or heading from data. Control characters are shown as escapes, as in the
    terminal: a line break would end the table row, and `b2b report --format markdown`
    prints to a terminal."""
    joined = _AUTOLINK.sub(lambda m: m.group() + WORD_JOINER, terminal_text(text))
    return _MARKDOWN_SYNTAX.sub(r"\\\1", joined)
