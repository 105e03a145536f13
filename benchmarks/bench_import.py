"""File import on SQLite: rows/s of ``vault import`` with identity resolution and audit, beside
a plain baseline measured in the same run, and peak memory as the file grows.

1. **Import**: ``Session.import_file`` of an N-row CSV (GB18030, Chinese headers: 姓名, 手机号码,
   电子邮箱, 收货地址, 生日; 5 fields, 4 of them sealed, 2 blind-indexed) into a fresh vault:
   encoding detection, header mapping, validation, batch identity resolution on blind indexes,
   sealing under one data key per customer, provenance rows, a committed cursor and an audit
   event per batch of 2,000 rows. Baseline: the same file read with ``csv`` (same decoding)
   and its rows inserted as they are into one plain table (one column per header) of a fresh
   SQLite database on the same engine settings, one transaction per batch of the same size.
   Goal: ≥ 25,000 rows/s.
2. **Peak RSS** of a child process importing the N-row file, and of one importing a file 5×
   longer (1,000,000 rows at the default size, only with ``--million``: it takes minutes), each
   beside the peak of a child importing 20,000 rows: memory is flat when the ratio stays near
   1. Goal: ≤ 1.3× the 20,000-row peak.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table

from benchmarks._table import Benchmark, Goal, Row, progress, stopwatch
from vault import Vault
from vault.store.engine import make_engine
from vault.synthetic import generate_customers

GOALS: dict[str, Goal] = {
    "rate": Goal(">=", 25_000, "/s"),
    "rss_ratio": Goal("<=", 1.3, "×"),
}
FULL = {"rows": 200_000}
QUICK = {"rows": 20_000}
SMALL_ROWS = 20_000
BATCH = 2_000
HEADER = ("姓名", "手机号码", "电子邮箱", "收货地址", "生日")
SEED = 606

CHILD = """
import resource, sys
from pathlib import Path
from vault import Vault
from vault.log import configure_logging
configure_logging(level="WARNING")
home, path, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
vault, token = Vault.init(home)
with vault:
    report = vault.session(token, purpose="administration").import_file(path, batch_size=batch)
print(report.created, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for person in generate_customers(rows, seed=SEED):
            writer.writerow(
                (person.name, person.phone, person.email, person.address, person.birthday)
            )


def baseline(path: Path, folder: Path) -> float:
    """Seconds to read ``path`` with csv and insert its rows plainly, batch by batch."""
    engine = make_engine(f"sqlite:///{folder / 'plain.db'}")
    metadata = MetaData()
    table = Table("rows", metadata, *(Column(f"c{i}", String) for i in range(len(HEADER))))
    metadata.create_all(engine)
    insert = table.insert()
    names = [f"c{i}" for i in range(len(HEADER))]
    with stopwatch() as elapsed, path.open("r", encoding="gb18030", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[dict[str, str]] = []
        for cells in reader:
            batch.append(dict(zip(names, cells, strict=True)))
            if len(batch) == BATCH:
                with engine.begin() as connection:
                    connection.execute(insert, batch)
                batch = []
        if batch:
            with engine.begin() as connection:
                connection.execute(insert, batch)
    engine.dispose()
    return elapsed[0]


def child_peak_mib(path: Path, folder: Path) -> float:
    home = Path(tempfile.mkdtemp(dir=folder)) / "home"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), str(path), str(BATCH)],
        capture_output=True,
        text=True,
        check=True,
    )
    _, peak_kib = done.stdout.split()
    return int(peak_kib) / 1024


def run(args: argparse.Namespace) -> list[Row]:
    rows: int = args.rows or (QUICK if args.quick else FULL)["rows"]
    from vault.log import configure_logging

    configure_logging(level="WARNING")
    results: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vault-bench-import-") as name:
        folder = Path(name)
        path = folder / "customers.csv"
        progress(f"import: writing a {rows:,}-row GB18030 CSV …")
        write_file(path, rows)
        progress("import: plain baseline (csv + plain inserts) …")
        plain = baseline(path, folder)
        progress("import: vault import …")
        vault, token = Vault.init(folder / "home")
        with vault:
            admin = vault.session(token, purpose="administration")
            with stopwatch() as elapsed:
                report = admin.import_file(path, batch_size=BATCH)
        assert report.created == rows, json.dumps(report.as_dict())[:500]
        results.append(
            Row(
                "import, CSV GB18030 (resolve + seal + audit)",
                rows / elapsed[0],
                "rows/s",
                baseline=rows / plain,
                higher_is_better=True,
                goals=(GOALS["rate"],),
                note=f"{rows:,} rows in {elapsed[0]:.1f}s; baseline: csv + plain inserts "
                f"in {plain:.1f}s",
            )
        )
        progress(f"import: peak RSS of a child importing {SMALL_ROWS:,} rows …")
        small = folder / "small.csv"
        write_file(small, SMALL_ROWS)
        small_peak = child_peak_mib(small, folder)
        progress(f"import: peak RSS of a child importing {rows:,} rows …")
        results.append(
            Row(
                f"peak RSS, import of {rows:,} rows",
                child_peak_mib(path, folder),
                "MiB",
                baseline=small_peak,
                ratio_goals=(GOALS["rss_ratio"],),
                note=f"baseline: the same import of {SMALL_ROWS:,} rows",
            )
        )
        if args.million:
            big = folder / "big.csv"
            big_rows = rows * 5
            progress(f"import: writing and importing {big_rows:,} rows in a child …")
            write_file(big, big_rows)
            results.append(
                Row(
                    f"peak RSS, import of {big_rows:,} rows",
                    child_peak_mib(big, folder),
                    "MiB",
                    baseline=small_peak,
                    ratio_goals=(GOALS["rss_ratio"],),
                    note=f"baseline: the same import of {SMALL_ROWS:,} rows",
                )
            )
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=int, default=None, help=f"rows of the CSV (default {FULL['rows']:,})"
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="also measure peak RSS at 5× the rows (1,000,000 by default; takes minutes)",
    )


BENCHMARK = Benchmark(
    help="file import rows/s with identity resolution and audit; peak RSS at 200k and 1M rows",
    add_arguments=add_arguments,
    run=run,
)
