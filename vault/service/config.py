"""What a running service is configured with (``vault serve`` options), apart from the vault."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: a customer record or a batch of tags fits easily
DEFAULT_RATE = 200.0  # requests per second per token, sustained
DEFAULT_BURST = 400  # requests a token may make at once before the rate applies


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """Limits of one API process. ``rate`` 0 turns the per-token rate limit off."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    access_log: bool = True
    # Witnessed audit checkpoints (vault/audit/witness.py): a directory the database's writers
    # cannot write, every N events and every T seconds.
    witness_dir: str | None = None
    witness_every_events: int = 1000
    witness_every_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        if self.rate < 0 or self.burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
