"""The monthly partitions every monthly asset, job, sensor and schedule shares: from
B2B_FIRST_MONTH to the as-of month. Built once, when the code location loads."""

from b2b_platform.lib.asset_step import monthly_partitions
from b2b_platform.lib.settings import Settings

MONTHLY = monthly_partitions(Settings.from_env())
