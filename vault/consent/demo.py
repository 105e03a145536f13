"""The consent step of ``vault demo``: grants, a withdrawal, a consented export."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from vault.export import manifest_path
from vault.export.files import private_file
from vault.session import Session

PURPOSE = "marketing_email"


def consent_and_export_step(
    admin: Session,
    ids: Sequence[str],
    home: Path,
    echo: Callable[[str], None],
    *,
    seed: int,
    step: str,
) -> Path:
    """Grant marketing-email consent to a third of the customers (one of them then withdraws),
    export the consented ones (name and email only, the purpose's fields) to a CSV with its
    manifest. Returns the export's path."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    chosen = rng.sample(list(ids), max(1, len(ids) // 3))
    for n, customer_id in enumerate(chosen):
        admin.grant_consent(customer_id, PURPOSE, source="web-form", evidence=f"demo-form-{n:04d}")
    admin.withdraw_consent(chosen[0], PURPOSE, source="phone", evidence="demo-call-0001")
    target = home / "marketing_email.csv"
    with private_file(target) as out:  # 0600, complete or absent, as `vault export` writes
        manifest = admin.export(
            PURPOSE, out, fields=["name", "email"], manifest_to=manifest_path(target)
        )
    sample = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))[1:3]
    echo(f"{step} Consent: {len(chosen)} customers granted {PURPOSE}, one withdrew at once;")
    echo(
        f"   the export holds exactly the {manifest.rows} consented customers, name and email only:"
    )
    for row in sample:
        echo(f"     {' | '.join(row)}")
    echo(f"   {target.name} + manifest (SHA-256 {manifest.file_sha256[:16]}…) in the vault home;")
    echo(f"   the audit event carries the manifest's hash {manifest.sha256[:16]}….")
    return target
