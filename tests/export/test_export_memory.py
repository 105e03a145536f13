"""An export streams: its peak memory does not grow with the number of rows.

The vault is filled to SMALL customers and exported, then to LARGE and exported again, each
export in a fresh subprocess that reports its own peak RSS. Tripling the rows may grow the peak
by at most GROWTH_LIMIT_MB: an export that held its rows (or their decrypted values) would grow
by tens of MB. The 200,000-customer run, with its absolute peak, is in
``benchmarks/bench_export.py`` (``python -m benchmarks export``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vault import Vault

SMALL = 20_000
LARGE = 60_000
# The ids the export's audit event indexes stay in memory (about 100 bytes each): 40,000 more
# ids are ~4 MB. Holding the decrypted rows instead would add ~25 MB.
GROWTH_LIMIT_MB = 10

BUILD = """
import sys
from itertools import islice
from vault import NewCustomer, Vault
from vault.consent.ledger import ConsentEntry, record
from vault.store.engine import utcnow
from vault.synthetic import generate_customers

home, token, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with Vault.open(home) as vault:
    admin = vault.session(token, purpose="administration")
    people = islice(generate_customers(stop, seed=5), start, stop)  # one population, in two parts
    ids = admin.add_customers(
        (NewCustomer(fields={"name": p.name, "phone": p.phone, "email": p.email}) for p in people),
        source="test",
        batch_size=5000,
    )
    now = utcnow()
    for start in range(0, len(ids), 5000):
        with vault._transaction() as connection:
            record(
                connection,
                vault.policy,
                [
                    ConsentEntry(customer_id=cid, purpose="marketing_email", state="granted",
                                 at=now, channel="test")
                    for cid in ids[start:start + 5000]
                ],
                recorded_by="test",
            )
"""

EXPORT = """
import json, resource, sys
from vault import Vault

home, token, target = sys.argv[1], sys.argv[2], sys.argv[3]
with Vault.open(home) as vault:
    session = vault.session(token, purpose="marketing_email")
    with open(target, "wb") as out:
        manifest = session.export("marketing_email", out, fmt="csv")


def peak_kib():
    # VmHWM: this process's own high-water mark. (ru_maxrss would report the parent's size
    # too: Linux carries the pre-exec peak of a forked child over into it.)
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


print(json.dumps({"rows": manifest.rows, "peak_kb": peak_kib()}))
"""


def add_customers(home: Path, token: str, start: int, stop: int) -> None:
    subprocess.run(
        [sys.executable, "-c", BUILD, str(home), token, str(start), str(stop)], check=True
    )


def export_peak_mb(home: Path, token: str, target: Path, rows: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", EXPORT, str(home), token, str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["rows"] == rows
    assert target.stat().st_size > rows * 40  # the rows really are in the file
    return float(measured["peak_kb"]) / 1024


@pytest.mark.slow
def test_export_peak_memory_does_not_grow_with_the_number_of_rows(
    home: Path, db_url: str, tmp_path: Path
) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    vault.close()
    add_customers(home, token, 0, SMALL)
    small = export_peak_mb(home, token, tmp_path / "small.csv", SMALL)
    add_customers(home, token, SMALL, LARGE)
    large = export_peak_mb(home, token, tmp_path / "large.csv", LARGE)
    assert large - small < GROWTH_LIMIT_MB, {"small_mb": small, "large_mb": large}
