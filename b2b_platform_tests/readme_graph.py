"""The asset graph as a Mermaid flowchart, for docs/architecture.md (a picture on GitHub).

`python -m b2b_platform_tests.readme_graph docs/architecture.md` rewrites the diagram
between the document's asset-graph markers (without an argument, prints it);
test_definitions fails when the document's copy is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg

from b2b_platform.definitions import defs
from b2b_platform.lib.dagster_internals import asset_graph

START, END = "<!-- asset-graph:start -->", "<!-- asset-graph:end -->"
GROUP_ORDER = ["raw", "staging", "core", "reports"]


def _node_id(key: dg.AssetKey) -> str:
    return "_".join(key.path)


def mermaid_asset_graph(defs: dg.Definitions) -> str:
    graph = asset_graph(defs)
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    groups: dict[str, list[dg.AssetKey]] = {}
    for key in keys:
        groups.setdefault(graph.get(key).group_name or "default", []).append(key)
    lines = ["```mermaid", "flowchart LR"]
    for group in sorted(groups, key=lambda g: [*GROUP_ORDER, g].index(g)):
        lines.append(f"  subgraph {group}")
        for key in groups[group]:
            monthly = " ·monthly" if graph.get(key).partitions_def is not None else ""
            lines.append(f'    {_node_id(key)}["{key.path[-1]}{monthly}"]')
        lines.append("  end")
    for key in keys:
        for parent in sorted(graph.get(key).parent_keys, key=lambda k: k.to_user_string()):
            lines.append(f"  {_node_id(parent)} --> {_node_id(key)}")
    lines.append("```")
    return "\n".join(lines)


def replace_in(text: str, diagram: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{diagram}\n{END}{tail}"


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
