"""`make shape`: the code's shape against the maintainers' goals, measured from the source.

Length is not a goal: a module is judged by whether it holds one concept, which a line
count cannot tell (splitting to meet one scatters a concept instead).

- no SQL built by f-string with a runtime value in it (values are bound as parameters;
  only identifiers from code may be pasted, and they are named so: see IDENTIFIER);
- no import of Dagster's private modules (`dagster._...`);
- no import cycle between the first-party packages, and no upward import (a lower
  layer importing a higher one; LAYERS, bottom first).

Prints every finding and a summary; exits 1 when a goal is not met, so `make lint` can
gate on it. `--report` prints the numbers without failing.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("b2b_common", "source_db", "generators", "b2b_platform")
# bottom first: a package may import only those below it
# (b2b_platform's CLI runs the generators: `b2b generate`)
LAYERS = {"b2b_common": 0, "source_db": 1, "generators": 2, "b2b_platform": 3}
SQL = re.compile(
    r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|ATTACH|DESCRIBE|SET|PRAGMA)\b"
    r"|\b(FROM|WHERE|JOIN|VALUES|GROUP BY|ORDER BY)\b",
)  # case-sensitive: the SQL here is written in capitals, prose ("from the backup") is not
# what may be pasted into SQL text: names of tables, columns, schemas and SQL fragments
# built from code, never a value that came from data, the environment or a user
IDENTIFIER = re.compile(
    r"(table|schema|column|columns|identifier|quoted|name|names|key_columns|select|"
    r"expression|sql|fragment|where|order|macro|relation|view|target|cols|query|join|"
    r"clause|condition|filter|in_slice|reasons|scope|dtype|type|in_month|hash|list|qualified|"
    r"unseen|known|key|counts|sample|int|terms|latest|message|inner|day|parameter)s?$",
    re.IGNORECASE,
)


@dataclass
class Findings:
    sql_fstrings: list[str] = field(default_factory=list)
    sql_values: list[str] = field(default_factory=list)
    private_imports: list[str] = field(default_factory=list)
    upward_imports: list[str] = field(default_factory=list)
    cycles: list[str] = field(default_factory=list)


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        if (ROOT / package).is_dir():
            yield from sorted((ROOT / package).rglob("*.py"))


def _pasted(node: ast.expr) -> str:
    """The name of what an f-string pastes: `table`, `self.table`, `quote(x)` -> x."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _pasted(node.func)
    if isinstance(node, ast.Subscript):
        return _pasted(node.value)
    return type(node).__name__


def _is_identifier(name: str) -> bool:
    return bool(IDENTIFIER.search(name)) or name.isupper()


def scan(path: Path, findings: Findings) -> dict[str, set[str]]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    imports: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            literal = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            pasted = [_pasted(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
            if pasted and SQL.search(literal):
                findings.sql_fstrings.append(f"{where}:{node.lineno}")
                values = [p for p in pasted if not _is_identifier(p)]
                if values:
                    findings.sql_values.append(f"{where}:{node.lineno} pastes {', '.join(values)}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if name.startswith("dagster._"):
                    findings.private_imports.append(f"{where}:{node.lineno} {name}")
                top = name.split(".")[0]
                if top in PACKAGES:
                    imports.setdefault(top, set()).add(f"{where}:{node.lineno}")
    return imports


def measure() -> Findings:
    findings = Findings()
    edges: dict[tuple[str, str], list[str]] = {}
    for path in modules():
        package = path.relative_to(ROOT).parts[0]
        for target, places in scan(path, findings).items():
            if target != package:
                edges.setdefault((package, target), []).extend(sorted(places))
    for (source, target), places in sorted(edges.items()):
        if LAYERS[target] > LAYERS[source]:
            findings.upward_imports.append(f"{source} -> {target} ({places[0]})")
        if (target, source) in edges and source < target:
            findings.cycles.append(f"{source} <-> {target}")
    return findings


def main(argv: list[str]) -> int:
    findings = measure()
    goals = {
        "SQL f-strings pasting a value": findings.sql_values,
        "private Dagster imports": findings.private_imports,
        "upward imports between packages": findings.upward_imports,
        "import cycles between packages": findings.cycles,
    }
    for title, items in goals.items():
        if items:
            print(f"{title} ({len(items)}):")
            for item in items:
                print(f"  {item}")
    print(
        f"SQL f-strings in all (identifiers pasted from code included): {len(findings.sql_fstrings)}"
    )
    print("summary: " + ", ".join(f"{title}: {len(items)}" for title, items in goals.items()))
    if "--report" in argv:
        return 0
    return 1 if any(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
