"""``python -m benchmarks [--quick] [NAME [options]]``: run one benchmark, or all of them.

Every benchmark is a subcommand found in :data:`BENCHMARKS` (name → :class:`Benchmark`): each
module ``benchmarks/bench_NAME.py`` with a ``BENCHMARK`` is one, found by its name, so adding a
benchmark is adding its module. Without a name every benchmark runs with its default sizes
(``--quick``: small sizes, for smoke tests), in the order of ``FIRST`` and then by name. Tables
go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._table import Benchmark, Row, peak_rss_mib, print_table

FIRST = ("store", "audit")  # the foundations, before the capabilities built on them


def _discover() -> dict[str, Benchmark]:
    names = sorted(
        module.name.removeprefix("bench_")
        for module in pkgutil.iter_modules([str(Path(__file__).parent)])
        if module.name.startswith("bench_")
    )
    ordered = [name for name in FIRST if name in names] + [n for n in names if n not in FIRST]
    return {name: importlib.import_module(f"benchmarks.bench_{name}").BENCHMARK for name in ordered}


BENCHMARKS: dict[str, Benchmark] = _discover()


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Vault benchmarks, each beside a plain baseline measured in the same run.",
    )
    # A separate dest: a subparser's own --quick default would otherwise overwrite this one.
    parser.add_argument(
        "--quick", dest="quick_all", action="store_true", help="small sizes (a smoke run)"
    )
    parser.add_argument(
        "--strict",
        dest="strict_all",
        action="store_true",
        help="exit with status 1 if any goal is missed",
    )
    commands = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for name, benchmark in BENCHMARKS.items():
        sub = commands.add_parser(name, help=benchmark.help, description=benchmark.help)
        sub.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
        sub.add_argument(
            "--strict", action="store_true", help="exit with status 1 if any goal is missed"
        )
        benchmark.add_arguments(sub)
        subparsers[name] = sub
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    if args.benchmark is not None:
        runs = [(args.benchmark, args)]
        strict = args.strict_all or args.strict
        if args.quick_all:
            args.quick = True
    else:
        flags = ["--quick"] if args.quick_all else []
        runs = [(name, subparsers[name].parse_args(flags)) for name in BENCHMARKS]
        strict = args.strict_all
    missed: list[str] = []
    started = time.perf_counter()
    for name, bench_args in runs:
        rows: Sequence[Row] = BENCHMARKS[name].run(bench_args)
        print_table(f"{name}: {BENCHMARKS[name].help}", rows)
        missed += [f"{name}: {row.measurement}" for row in rows if row.met is False]
    wall = time.perf_counter() - started
    print(f"\npeak RSS: {peak_rss_mib():,.0f} MiB; total wall time {wall:.1f} s")
    if missed:
        print("goals missed: " + "; ".join(missed))
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
