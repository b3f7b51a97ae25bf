"""``trademaster``: the stack's command line.

trademaster up [--once]           the whole stack (what ``make up`` runs)
trademaster warehouse seed        demo data into an empty warehouse ([--replace | --if-empty])
trademaster market advance        append business days to the demo warehouse ([--days N])
trademaster pipeline run          the training DAG once, with Airflow's dag.test()
trademaster export MODEL          export MODEL's champion into the Triton model repository
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("feast.infra.registry.registry", "alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _up(args: argparse.Namespace) -> int:
    from trademaster.stack import run_stack

    return run_stack(once=args.once)


def _warehouse_seed(args: argparse.Namespace) -> int:
    from trademaster.settings import PipelineSettings
    from trademaster.warehouse.seed import seed_if_empty, seed_warehouse

    settings = PipelineSettings()
    if args.if_empty:
        summary = seed_if_empty(settings)
        if summary is None:
            print("[warehouse] not empty: left as it is")
            return 0
    else:
        summary = seed_warehouse(settings, replace=args.replace)
    print(json.dumps(summary.as_dict(), indent=2))
    return 0


def _market_advance(args: argparse.Namespace) -> int:
    from trademaster.settings import PipelineSettings
    from trademaster.warehouse.advance import QUIET, Regime, advance_market

    try:
        if args.surge:
            regime = Regime.parse_surge(args.surge, args.volatility)
        else:
            regime = Regime(volatility=args.volatility) if args.volatility != 1 else QUIET
    except ValueError as exc:
        print(f"[market] {exc}", file=sys.stderr)
        return 2
    summary = advance_market(PipelineSettings(), args.days, regime=regime)
    print(json.dumps(summary.as_dict(), indent=2))
    return 0


def _pipeline_run(args: argparse.Namespace) -> int:
    from trademaster.pipeline.airflow_runner import run_training_dag
    from trademaster.settings import PipelineSettings

    took = run_training_dag(PipelineSettings())
    print(f"[pipeline] done in {took:.0f} s")
    return 0


def _export(args: argparse.Namespace) -> int:
    from exporters.registered import export_champion
    from trademaster.pipeline.catalog import definition
    from trademaster.settings import PipelineSettings

    model = definition(args.model)
    report = export_champion(PipelineSettings(), model.name, model.exporter.export_version)
    print(json.dumps(report, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trademaster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole stack until Ctrl-C")
    up.add_argument("--once", action="store_true", help="exit 0 after the sample prediction")
    up.set_defaults(handler=_up)

    pipeline = commands.add_parser("pipeline", help="the Airflow training pipeline")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True)
    run = pipeline_commands.add_parser("run", help="run the DAG once with dag.test()")
    run.set_defaults(handler=_pipeline_run)

    warehouse = commands.add_parser("warehouse", help="the trading warehouse's demo data")
    warehouse_commands = warehouse.add_subparsers(dest="warehouse_command", required=True)
    seed = warehouse_commands.add_parser(
        "seed",
        help="fill an empty warehouse with demo data (real OHLCV + generated symbols, users, "
        "trades, headlines)",
    )
    mode = seed.add_mutually_exclusive_group()
    mode.add_argument(
        "--replace", action="store_true", help="replace the demo tables even if they hold rows"
    )
    mode.add_argument(
        "--if-empty", action="store_true", help="do nothing if any demo table holds rows"
    )
    seed.set_defaults(handler=_warehouse_seed)

    market = commands.add_parser("market", help="the demo market: more trading days")
    market_commands = market.add_subparsers(dest="market_command", required=True)
    advance = market_commands.add_parser(
        "advance",
        help="append business days to a seeded warehouse: bars, trades, sign-ups, headlines",
    )
    advance.add_argument("--days", type=int, default=1, help="business days (default 1)")
    advance.add_argument(
        "--volatility",
        type=float,
        default=1.0,
        help="drift drill: multiply the new days' return shocks and ranges (default 1)",
    )
    advance.add_argument(
        "--surge",
        metavar="ARCHETYPE:COUNT",
        help="drift drill: that many extra sign-ups of one archetype, e.g. day_trader:800",
    )
    advance.set_defaults(handler=_market_advance)

    export = commands.add_parser("export", help="export a model's champion to Triton")
    export.add_argument("model", help="registered model name, e.g. risk-assessment-model")
    export.set_defaults(handler=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI's last line of defence: one clear line, no traceback
        logging.getLogger("trademaster").debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
