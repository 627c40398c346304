"""Device labels against real user agents (fixtures/user_agents, from uap-core)."""

import json
from pathlib import Path

import duckdb
import pytest

from b2b_platform.defs.weblogs import staging
from b2b_platform.lib.weblogs.user_agents import (
    MAX_USER_AGENT_CHARS,
    describe_user_agent,
    describe_user_agents,
    device_label,
)
from b2b_platform_tests.test_client_addresses import make_month, stage_month

CASES = json.loads(
    (Path(__file__).parent / "fixtures" / "user_agents" / "uap_core_device_cases.json").read_text()
)["cases"]


def test_device_family_matches_uap_core_for_every_case():
    frame = describe_user_agents(c["user_agent_string"] for c in CASES)
    expected = {c["user_agent_string"]: c["device"]["family"] for c in CASES}
    wrong = [(r["user_agent"], r["device_family"]) for r in frame.iter_rows(named=True)
             if r["device_family"] != expected[r["user_agent"]]]  # fmt: skip
    assert wrong == []
    labels = dict(zip(frame["user_agent"], frame["device_label"], strict=True))
    for case in CASES:
        family = case["device"]["family"]
        if family != "Other":
            assert labels[case["user_agent_string"]] == family


def test_spider_cases_are_bots():
    spiders = [c["user_agent_string"] for c in CASES if c["device"]["family"] == "Spider"]
    assert spiders
    assert all(describe_user_agent(ua)["is_bot"] for ua in spiders)


@pytest.mark.parametrize(
    ("ua", "label", "device_type", "bot"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
         "Windows desktop", "desktop", False),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Linux desktop", "desktop", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
         "iPhone", "mobile", False),
        ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
         "iPad", "tablet", False),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Spider", "other", True),
        ("curl/8.5.0", "Unknown device", "other", True),
        ("something nobody knows", "Unknown device", "other", False),
    ],
)  # fmt: skip
def test_labels(ua, label, device_type, bot):
    described = describe_user_agent(ua)
    assert (described["device_label"], described["device_type"], described["is_bot"]) == (
        label,
        device_type,
        bot,
    )


def test_label_rule():
    assert device_label("Samsung SM-S911B", "Android", False) == "Samsung SM-S911B"
    assert device_label("Other", "Mac OS X", True) == "Mac OS X desktop"
    assert device_label("Other", "Android", False) == "Unknown device"


def test_an_over_long_agent_is_parsed_cut_but_keyed_whole():
    # the parser cuts agents to MAX_USER_AGENT_CHARS; rows loaded before that may not be
    long = "Mozilla/5.0 " + "a" * MAX_USER_AGENT_CHARS + " curl/8.5.0"
    described = describe_user_agent(long)
    assert described["user_agent"] == long  # the staging view joins on the whole string
    assert described["is_bot"] is False  # curl/ lies past the cut: not seen


def test_staging_parses_at_most_the_bound_of_new_agents_most_frequent_first(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "MAX_NEW_USER_AGENTS", 2)
    database = tmp_path / "b2b.duckdb"
    agents = ["curl/8.5.0"] * 3 + ["Wget/1.21"] * 2 + ["zgrab/0.x", "python-requests/2.32", None]
    make_month(database, [("8.8.8.8", agent) for agent in agents])
    counts, _ = stage_month(database)
    assert (counts["new_user_agents"], counts["user_agents_deferred"]) == (2, 2)
    with duckdb.connect(str(database), read_only=True) as conn:
        parsed = conn.execute("SELECT user_agent FROM staging.user_agents ORDER BY 1").fetchall()
        labels = dict(conn.execute("SELECT DISTINCT user_agent, device_label FROM"
                                   " staging.web_requests").fetchall())  # fmt: skip
    assert parsed == [("Wget/1.21",), ("curl/8.5.0",)]
    assert labels["zgrab/0.x"] == "Unknown device"  # deferred: the view's default
    counts, _ = stage_month(database, "run-2")  # a later run parses the rest
    assert (counts["new_user_agents"], counts["user_agents_deferred"]) == (2, 0)
