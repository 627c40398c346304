"""Jobs the schedule and the sensors launch.

The sensors' jobs load one source; what is unpartitioned downstream of them (core
dimensions, the web-request view, reports and their files) follows by declarative
automation (`automation.py`). The daily job runs the whole graph for a range of months
in one run, the unpartitioned assets once and in dependency order.
"""

import dagster as dg


def asset_keys(*names: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(name.split("/")) for name in names]


weblogs_month_job = dg.define_asset_job(
    "weblogs_month_job",
    selection=dg.AssetSelection.assets(
        *asset_keys("raw/weblogs", "staging/web_requests", "core/fct_logins")
    ),
    description="One month of web logs: new or changed files in, removed files out, then the "
    "month's requests staged and its logins.",
)
leads_job = dg.define_asset_job(
    "leads_job",
    selection=dg.AssetSelection.tag("source", "leads"),
    description="Lead workbooks: new or changed files in, removed files out, then staged.",
)
daily_refresh_job = dg.define_asset_job(
    "daily_refresh_job",
    selection=dg.AssetSelection.all(),
    description="Every asset: platform snapshots, lead workbooks and dimensions once, the "
    "selected months of orders, web logs and facts, then the reports.",
)
b2b_refresh = dg.define_asset_job(
    "b2b_refresh",
    selection=dg.AssetSelection.all(),
    description="What `b2b run` launches: one run per stage of the selected assets, the "
    "monthly ones over a range of months (the Runs page shows it by this name).",
)
