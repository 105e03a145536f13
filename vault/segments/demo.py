"""The segments step of ``vault demo``: value tiers and lifecycle stages from purchase history
alone, read by an analyst who sees no personal field."""

from __future__ import annotations

from collections.abc import Callable

from vault.session import Session
from vault.vault import Vault


def segments_step(vault: Vault, admin: Session, echo: Callable[[str], None], *, step: str) -> None:
    """Recompute every customer's RFM scores, tier and stage, then list them as an analyst."""
    report = admin.recompute_segments()
    analyst = vault.session(admin.add_principal("analyst", ["analyst"]), purpose="analytics")
    counts = analyst.list_segments(limit=1).counts
    echo(
        f"{step} Segments from {report.orders} orders alone (no personal field decrypted): "
        f"{report.customers} buyers scored R/F/M 1-5."
    )
    for kind in ("tier", "stage"):
        shown = ", ".join(f"{name} {n}" for name, n in sorted(counts.get(kind, {}).items()) if n)
        echo(f"   by {kind}: {shown}")
    echo("   (an analyst reads these for `analytics`; `vault export --tier high_value` uses them)")
