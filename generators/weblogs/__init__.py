"""Web server access logs that tell the same story as the platform database.

One file per server-local day in Apache/NGINX combined format. Users of client companies log
in, browse real products and check out at the ``ordered_at`` of their orders; others log in
and browse without buying; anonymous visitors, crawlers and internal health checks fill the
rest. Client IPs are real allocations of each user's country as ``iptocc`` sees them, so the
warehouse's login countries are the generator's countries.

Everything is vectorized: sessions and events are numpy arrays of integer codes into small
string tables, and a day of lines is one polars expression. Events are made one server-local
calendar month at a time and turned into text a day at a time, so memory stays bounded at
the ``xlarge`` scale (~8M lines a month); events of a session that crosses a month boundary
are carried into the next month.

Modules, bottom up: ``streams`` (random streams), ``calendar`` (server-local days and
hours), ``user_agents``, ``addresses`` (IPs by country), ``pages`` (pages, products, path
and referer tables), ``population`` (users, visitors' addresses), ``tables`` (string
tables), ``events`` (event batches), ``plan`` (orders, browsing, line budget), ``user_events``
and ``visitor_events`` (the traffic), ``lines`` and ``edge_cases`` (text), ``files``
(names, bytes, writing), ``summary`` and ``generate`` (the entry point).
"""

from generators.weblogs.addresses import sample_ips_in_country
from generators.weblogs.calendar import SERVER_TZ, SERVER_UTC_OFFSET_S
from generators.weblogs.edge_cases import MALFORMED_KINDS, REJECTED_KINDS, VHOST
from generators.weblogs.files import GZIP_AFTER_DAYS, LOGROTATE_EVERY
from generators.weblogs.generate import generate_weblogs
from generators.weblogs.pages import SITE
from generators.weblogs.plan import PlatformLike
from generators.weblogs.summary import WeblogSummary

__all__ = [
    "GZIP_AFTER_DAYS",
    "LOGROTATE_EVERY",
    "MALFORMED_KINDS",
    "REJECTED_KINDS",
    "SERVER_TZ",
    "SERVER_UTC_OFFSET_S",
    "SITE",
    "VHOST",
    "PlatformLike",
    "WeblogSummary",
    "generate_weblogs",
    "sample_ips_in_country",
]
