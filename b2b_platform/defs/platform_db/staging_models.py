"""The platform database's staging tables that are SQL alone: one asset per `<name>.yml`
in this folder, built from the `.sql` files it names.

A model's YAML says what a reader of the SQL needs beside it: the asset's description,
the assets it reads, the raw table whose records it accounts for, its business key, the
tables it writes (its own first) and, where records can be flagged, merged or rejected,
the temporary table that judges them and the query that quarantines them. Every model
gets the unique-key and accounting checks; `unique` adds keys that must hold too.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from b2b_platform.defs.platform_db.staging_common import (
    SOURCE,
    TAGS,
    row_count,
    staging_key,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import WAREHOUSE_POOL, AssetEvents, CheckAudit, published
from b2b_platform.lib.checks import Check
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import SqlFragment, bind_variables, qualified_name, sql_file
from b2b_platform.lib.warehouse.writes import Accounting, QuarantineSlice, TableSlice

MODELS = Path(__file__).parent
# The values a model's SQL may read with getvariable(), by name.
VARIABLES = {"as_of": lambda calendar: calendar.as_of_date}


@dataclass(frozen=True)
class UniqueKey:
    check: Check
    key: list[str]
    where: SqlFragment | None


@dataclass(frozen=True)
class StagingModel:
    name: str
    description: str
    reads: list[dg.AssetKey]
    records: str  # the raw table whose every row this model accounts for
    key: list[str]
    tables: dict[str, str]  # table -> the .sql stem whose rows it holds; its own first
    prepare: str | None = None
    quarantine: str | None = None
    variables: list[str] = field(default_factory=list)
    unique: list[UniqueKey] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "StagingModel":
        spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        unknown = set(spec.get("variables", [])) - set(VARIABLES)
        if unknown:
            raise ValueError(f"{path.name}: unknown variables {sorted(unknown)}")
        return cls(
            name=path.stem,
            description=spec["description"].strip(),
            reads=[dg.AssetKey(key.split("/")) for key in spec["reads"]],
            records=spec["records"],
            key=spec["key"],
            tables=spec["tables"],
            prepare=spec.get("prepare"),
            quarantine=spec.get("quarantine"),
            variables=spec.get("variables", []),
            unique=[
                UniqueKey(Check(name, u["description"]), u["key"], u.get("where"))
                for name, u in spec.get("unique", {}).items()
            ],
        )

    @property
    def table(self) -> str:
        return next(iter(self.tables))

    @property
    def asset_key(self) -> dg.AssetKey:
        return staging_key(self.name)

    def sql(self, stem: str) -> SqlFragment:
        return SqlFragment(sql_file(__file__, stem))

    def checks(self) -> list[Check]:
        return [checks.UNIQUE_KEY, checks.ACCOUNTING_IDENTITY, *(u.check for u in self.unique)]

    def check_results(self, conn: Any) -> list[dg.AssetCheckResult]:
        key = self.asset_key
        return [
            checks.unique_key(conn, key, self.table, self.key),
            checks.accounting_holds(conn, key, SOURCE, [self.name], None),
            *(
                checks.unique_key(conn, key, self.table, u.key, where=u.where, check=u.check)
                for u in self.unique
            ),
        ]


def build_staging_model(model: StagingModel) -> dg.AssetsDefinition:
    # Only a model that reads the as-of day takes the calendar: a whole table that does
    # is stale when the day moves, one that does not is not.
    resources = {"duckdb"} | ({"calendar"} if model.variables else set())

    @dg.asset(
        key=model.asset_key,
        deps=model.reads,
        kinds={"duckdb"},
        tags=TAGS,
        pool=WAREHOUSE_POOL,
        description=model.description,
        required_resource_keys=resources,
        check_specs=[check.spec(model.asset_key) for check in model.checks()],
    )
    def _staging_model(context: dg.AssetExecutionContext) -> AssetEvents:
        audit = CheckAudit(context, model.check_results)
        yield from published([audit], lambda: _stage(context, model, audit))

    return _staging_model


def _stage(
    context: dg.AssetExecutionContext, model: StagingModel, audit: CheckAudit
) -> dict[str, Any]:
    warehouse: WarehouseResource = context.resources.duckdb
    with warehouse.step(context) as step:
        conn = step.conn
        if model.variables:
            calendar: CalendarResource = context.resources.calendar
            bind_variables(conn, {name: VARIABLES[name](calendar) for name in model.variables})
        if model.prepare:
            conn.execute(model.sql(model.prepare))
        quarantine = (
            [QuarantineSlice(SOURCE, model.name, None, model.sql(model.quarantine))]
            if model.quarantine
            else []
        )
        result = step.commit(
            [TableSlice(table, model.sql(stem)) for table, stem in model.tables.items()],
            quarantine=quarantine,
            accounting=[
                Accounting(
                    SOURCE,
                    model.name,
                    None,
                    row_count(conn, model.records),
                    SqlFragment(f"SELECT count(*) FROM {qualified_name(model.table)}"),
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, model.table, result)


staging_models = [
    build_staging_model(StagingModel.load(path)) for path in sorted(MODELS.glob("*.yml"))
]
