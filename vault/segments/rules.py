"""``policies/segments.toml``: what counts as a purchase, how R, F and M are scored, and the
tier and stage rules. Loaded when the vault opens; a broken file stops it with a
``ConfigError`` that names the file and what is wrong.

Scores (R, F, M, each 1-5, 5 = best; a customer without a purchase has none):

* ``method = "quantiles"``: over the N customers who have a purchase, sorted ascending by the
  metric (R: the last purchase day, later is higher; F: the frequency; M: the total or average
  spend), a customer with rank i (1-based, ties taking the highest rank they share) scores
  ⌈5·i/N⌉, the fifth of the percentile rank it falls in. In cut points: cut k (k = 1..4) is
  the value at 0-based position ⌊k·N/5⌋, and a customer scores 1 + the number of cut points
  its value **reaches** (``>=``). Ties therefore always share a
  score (a score is a function of the value, never of an arbitrary order as an NTILE would
  give), and it is the **highest** quintile their rank range touches, as quintile scoring with
  ties does in the RFM literature: when 1,002 of 1,227 buyers bought today, all 1,002 have R = 5
  (a quintile whose values are all equal is the top one, not "least recent"), and when every
  customer bought once, all have F = 5. The cut points are a snapshot taken by a full recompute
  (``vault segments recompute``); an incremental update scores its customer against the stored
  snapshot, so one order never rescores everyone else (cut points stored before this rule
  changed are read the new way until the next recompute).
* ``method = "fixed"``: four cut points per metric in ``[scores.fixed]``, increasing for F and M
  (score 1 + the number of cut points the value is strictly greater than), decreasing for R in
  days (score 1 + the number of cut points the recency is strictly below).

Tiers and stages: ordered lists of ``{name, when}``; the first rule whose ``when`` holds gives the
customer's tier (stage); none may hold. Rules are in :mod:`vault.segments.expressions`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vault.errors import ConfigError
from vault.segments.expressions import SCORE_FACTS, Predicate, compile_rule

ScoreMethod = Literal["quantiles", "fixed"]
METRICS = ("r", "f", "m")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_TOP_KEYS = {"version", "summary", "scores", "tiers", "stages"}
_SUMMARY_KEYS = {"timezone", "frequency", "monetary", "exclude_statuses", "currency"}
_SCORE_KEYS = {"method", "fixed"}
_FIXED_KEYS = {"recency_days", "frequency", "monetary"}


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: str
    description: str
    test: Predicate = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentRules:
    timezone: ZoneInfo
    frequency: Literal["days", "orders"] = "days"
    monetary: Literal["total", "average"] = "total"
    exclude_statuses: frozenset[str] = frozenset()
    currency: str | None = None
    method: ScoreMethod = "quantiles"
    fixed_cuts: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    tiers: tuple[Rule, ...] = ()
    stages: tuple[Rule, ...] = ()
    source: str = "<rules>"

    @classmethod
    def load(cls, path: Path) -> SegmentRules:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the segment rules ({error.strerror})") from None
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str = "<rules>") -> SegmentRules:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{source} is not valid TOML: {error}") from None
        return _build(data, source)

    def tier_names(self) -> list[str]:
        return [rule.name for rule in self.tiers]

    def stage_names(self) -> list[str]:
        return [rule.name for rule in self.stages]

    def is_excluded(self, status: str, refunded: bool, currency: str) -> bool:
        """Whether an order does not count as a purchase."""
        return (
            refunded
            or status.lower() in self.exclude_statuses
            or (self.currency is not None and currency != self.currency)
        )


def _unknown(where: str, data: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> Any:
    if value not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _cuts(value: Any, where: str, *, decreasing: bool = False) -> tuple[int, int, int, int]:
    order = "decreasing" if decreasing else "increasing"
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(type(v) is int and v >= 0 for v in value)
        or any((a <= b) if decreasing else (a >= b) for a, b in pairwise(value))
    ):
        raise ConfigError(f"{where} must be four {order} non-negative integers")
    return (value[0], value[1], value[2], value[3])


def _rules(data: dict[str, Any], key: str, source: str) -> tuple[Rule, ...]:
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: {key} must be an array of tables ([[{key}]])")
    rules: list[Rule] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: {key} #{index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        _unknown(where, entry, {"name", "when", "description"})
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: name must be lower-case letters, digits, _ or -")
        where = f"{source}: {key} {name!r}"
        when = entry.get("when")
        if not isinstance(when, str):
            raise ConfigError(f"{where}: 'when' (the rule) is missing")
        description = entry.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{where}: description must be a string")
        test = compile_rule(when, where=where, allowed=SCORE_FACTS)
        rules.append(Rule(name, when, description, test))
    return tuple(rules)


def _build(data: dict[str, Any], source: str) -> SegmentRules:
    _unknown(source, data, _TOP_KEYS)
    if data.get("version") != 1:
        raise ConfigError(f"{source}: version must be 1")
    summary = _table(data, "summary", source)
    _unknown(f"{source}: [summary]", summary, _SUMMARY_KEYS)
    zone_name = summary.get("timezone", "UTC")
    try:
        timezone = ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{source}: [summary] timezone {zone_name!r} is unknown") from None
    statuses = summary.get("exclude_statuses", ["cancelled", "canceled", "refunded", "closed"])
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        raise ConfigError(f"{source}: [summary] exclude_statuses must be a list of strings")
    currency = summary.get("currency") or None
    if currency is not None and (
        not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha()
    ):
        raise ConfigError(f"{source}: [summary] currency must be an ISO 4217 code or empty")
    scores = _table(data, "scores", source)
    _unknown(f"{source}: [scores]", scores, _SCORE_KEYS)
    method = _choice(
        scores.get("method", "quantiles"), ("quantiles", "fixed"), f"{source}: [scores] method"
    )
    fixed = _table(scores, "fixed", f"{source}: [scores]")
    _unknown(f"{source}: [scores.fixed]", fixed, _FIXED_KEYS)
    fixed_cuts: dict[str, tuple[int, int, int, int]] = {}
    for metric, key in zip(METRICS, ("recency_days", "frequency", "monetary"), strict=True):
        if key in fixed:
            fixed_cuts[metric] = _cuts(
                fixed[key], f"{source}: [scores.fixed] {key}", decreasing=metric == "r"
            )
        elif method == "fixed":
            raise ConfigError(f"{source}: [scores.fixed] {key} is needed when method = 'fixed'")
    tiers = _rules(data, "tiers", source)
    stages = _rules(data, "stages", source)
    seen: set[str] = set()
    for rule in (*tiers, *stages):
        if rule.name in seen:
            raise ConfigError(f"{source}: the name {rule.name!r} is used twice (tiers and stages)")
        seen.add(rule.name)
    return SegmentRules(
        timezone=timezone,
        frequency=_choice(
            summary.get("frequency", "days"), ("days", "orders"), f"{source}: [summary] frequency"
        ),
        monetary=_choice(
            summary.get("monetary", "total"), ("total", "average"), f"{source}: [summary] monetary"
        ),
        exclude_statuses=frozenset(s.lower() for s in statuses),
        currency=currency.upper() if currency else None,
        method=method,
        fixed_cuts=fixed_cuts,
        tiers=tiers,
        stages=stages,
        source=source,
    )


def default_rules() -> SegmentRules:
    """The packaged ``policies/segments.toml``."""
    from importlib.resources import files

    return SegmentRules.parse(
        files("policies").joinpath("segments.toml").read_text(encoding="utf-8"),
        source="policies/segments.toml",
    )
