"""The code location loads, and every asset declares what the design requires."""

import dagster as dg

from b2b_platform.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs())


def test_every_asset_is_fully_described():
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.kinds, key
        assert node.owners, key
        assert node.description and len(node.description) > 20, key
        if key.path[0] in ("raw", "staging"):
            assert node.tags.get("source") in {"platform_db", "weblogs", "leads"}, key


def test_every_writer_is_in_the_warehouse_pool():
    for asset in defs().assets or []:
        assert asset.node_def.pool == "duckdb_warehouse", asset.keys
