"""Rewrite the asset graph in docs/architecture.md:
`python -m b2b_platform_tests.readme_graph docs/architecture.md` (without an argument,
print it). test_definitions fails when the document's copy is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from b2b_platform.definitions import defs
from b2b_platform.lib.orchestration.asset_graph_diagram import mermaid_asset_graph, replace_in


def main(argv: list[str]) -> int:
    diagram = mermaid_asset_graph(defs())
    if not argv:
        print(diagram)
        return 0
    readme = Path(argv[0])
    readme.write_text(replace_in(readme.read_text(), diagram))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
