"""``python -m benchmarks [--quick] [NAME [options]]``: run one benchmark, or all of them.

Every benchmark is a subcommand registered in :data:`BENCHMARKS` (name → :class:`Benchmark`);
adding one (audit, export, sync, ...) is a module with ``add_arguments`` and ``run`` and a line
here. Without a name every registered benchmark runs with its default sizes (``--quick``: small
sizes, for smoke tests). Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from benchmarks import bench_audit, bench_service, bench_store
from benchmarks._table import Benchmark, Row, peak_rss_mib, print_table

BENCHMARKS: dict[str, Benchmark] = {
    "store": bench_store.BENCHMARK,
    "audit": bench_audit.BENCHMARK,
    "service": bench_service.BENCHMARK,
}


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
