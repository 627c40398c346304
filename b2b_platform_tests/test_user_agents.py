"""Device labels against real user agents (fixtures/user_agents, from uap-core)."""

import json
from pathlib import Path

import pytest

from b2b_platform.lib.user_agents import describe_user_agent, describe_user_agents, device_label

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
