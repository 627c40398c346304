"""`b2b`: the operator's command line (DESIGN 9)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from b2b_platform.lib.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"b2b: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("b2b: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="b2b", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate", help="write the three simulated sources (database, web logs, lead workbooks)"
    )
    generate.add_argument("--scale", default="small", help="tiny, small or large (default small)")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument("--as-of", dest="as_of", help="last simulated day, YYYY-MM-DD (default today, UTC)")
    generate.add_argument("--out", default="data", help="output directory (default data)")
    generate.add_argument(
        "--source-db-url",
        dest="source_db_url",
        help="write the platform database here instead of OUT/source/b2b_platform.db "
        "(sqlite:///path or postgresql://...)",
    )
    generate.set_defaults(handler=_generate)
    return parser


def parse_date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{what} {value!r} is not a date: use YYYY-MM-DD") from None


def _generate(args: argparse.Namespace) -> int:
    from generators.config import SCALES, GenerationConfig
    from generators.report import format_summary
    from generators.sources import generate_sources

    if args.scale not in SCALES:
        raise UserError(f"unknown scale {args.scale!r}: choose one of {', '.join(SCALES)}")
    as_of = parse_date(args.as_of, "--as-of") if args.as_of else dt.datetime.now(dt.UTC).date()
    config = GenerationConfig(scale=SCALES[args.scale], seed=args.seed, as_of=as_of)
    summary = generate_sources(config, Path(args.out), args.source_db_url)
    print(format_summary(config, args.scale, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
