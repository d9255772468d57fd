"""Standing orders: how a Board meeting's vote is carried, and whose casting
vote breaks a tie.

``rules/standing_orders.yaml`` (format in docs/meetings.md) declares orders
for every programme by default and optionally per programme by name; a
meeting may name another file when it is scheduled (``schedule_meeting
standing_orders: <name or path>``: a name is ``rules/<name>.yaml``). Each
order has its number as the programme's standing orders print it (``4.2``),
quoted in every refusal that applies it:

- ``voting``: ``carried_by`` one of :data:`CARRIED_BY` (a majority of those
  voting; two-thirds of those voting; a majority of the members present who
  may vote) and ``casting_vote``: ``chair`` (on an equality of votes the
  Chair's casting vote decides) or ``none``;
- ``quorum`` and ``interests``: the numbers of the orders that a meeting's
  quorum (set when it is scheduled) and the rule "a member with an interest
  in an item takes no part in it" are under.

:func:`load_standing_orders` reads a file through the one loader
(:mod:`rules.loader`: validated strictly, cached by content); every error
names the file, the key and what is allowed. The version is the file's
``version``: a decision records the orders it was carried under
(``<name> <version>, standing order <n>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.domain.yamlio import load_yaml
from rules import loader
from rules.errors import RuleFileError
from rules.loader import Keys, where

__all__ = [
    "CARRIED_BY",
    "CASTING",
    "DEFAULT_FILE",
    "Orders",
    "StandingOrders",
    "StandingOrdersError",
    "Voting",
    "load_standing_orders",
    "parse_standing_orders",
]

RULES_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = RULES_DIR / "standing_orders.yaml"
CARRIED_BY = {
    "majority_of_those_voting": "a majority of those voting",
    "two_thirds_of_those_voting": "two-thirds of those voting",
    "majority_of_members_present": "a majority of the members present",
}
CASTING = {"chair": "the Chair has a casting vote", "none": "no casting vote"}
_NAME_RE, _VERSION_RE = loader.NAME_RE, loader.VERSION_RE
_ORDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.()-]{0,19}")


class StandingOrdersError(RuleFileError):
    """A standing-orders file that cannot be used."""

    FIELD = "standing_orders"


# ------------------------------------------------------------------ the orders


@dataclass(frozen=True)
class Voting:
    order: str
    carried_by: str
    casting_vote: str

    @property
    def words(self) -> str:
        """``standing order 4.2 (a majority of those voting)``"""
        return f"standing order {self.order} ({CARRIED_BY[self.carried_by]})"

    def carried(self, votes_for: int, against: int, may_vote: int) -> bool:
        """Whether ``votes_for`` carries the motion against ``against`` when
        ``may_vote`` members present may vote (abstentions are not votes)."""
        if self.carried_by == "majority_of_those_voting":
            return votes_for > against
        if self.carried_by == "two_thirds_of_those_voting":
            return votes_for > 0 and 3 * votes_for >= 2 * (votes_for + against)
        return 2 * votes_for > may_vote  # majority_of_members_present

    def casting_decides(self, votes_for: int, against: int, may_vote: int) -> bool:
        """A tie the Chair's casting vote (for) would carry: the orders grant one,
        the votes are equal and one more vote for carries the motion."""
        return (self.casting_vote == "chair" and votes_for == against
                and self.carried(votes_for + 1, against, may_vote))


@dataclass(frozen=True)
class Orders:
    """The standing orders in force for one programme."""

    voting: Voting
    quorum_order: str = ""
    interests_order: str = ""

    def cite(self, which: str) -> str:
        """`` (standing order 3.1)`` for ``quorum`` or ``interests``; '' if unnumbered."""
        n = self.quorum_order if which == "quorum" else self.interests_order
        return f" (standing order {n})" if n else ""


@dataclass(frozen=True)
class StandingOrders:
    name: str
    version: str
    title: str
    sha256: str
    source: str
    default: Orders
    programmes: dict[str, Orders] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def for_programme(self, programme: str) -> Orders:
        return self.programmes.get(programme, self.default)


# ------------------------------------------------------------------ the file's model


class StandingOrdersFile(Keys):
    """The top level of a standing-orders file (docs/meetings.md)."""

    name: Any
    version: Any
    title: Any = None
    source: Any = None
    description: Any = None
    default: Any
    programmes: Any = None


class OrdersModel(Keys):
    """``default`` or ``programmes.<name>``."""

    voting: Any = None
    quorum: Any = None
    interests: Any = None


class VotingModel(Keys):
    order: Any
    carried_by: Any
    casting_vote: Any = None


class NumberedModel(Keys):
    order: Any


def _mapping(raw: Any, src: str, at: str, model: type[Keys]) -> dict:
    return loader.check(model, raw, source=src, at=at, error=StandingOrdersError,
                        wording="schedule")


def _order(raw: Any, src: str, at: str) -> str:
    text = str(raw).strip() if isinstance(raw, (str, int, float)) else ""
    if not _ORDER_RE.fullmatch(text):
        raise StandingOrdersError(
            src, at, f"{raw!r} is not a standing order's number (e.g. \"4.2\")")
    return text


def _choice(raw: Any, src: str, at: str, allowed: dict[str, str]) -> str:
    if not isinstance(raw, str) or raw not in allowed:
        raise StandingOrdersError(src, at, f"{raw!r} is not allowed; use one of: "
                                           f"{', '.join(allowed)}")
    return raw


def _orders(raw: Any, src: str, at: str, base: Orders | None) -> Orders:
    body = _mapping(raw, src, at, OrdersModel)
    if body.get("voting") is None:
        if base is None:
            raise StandingOrdersError(src, where(at, "voting"), "is required")
        voting = base.voting
    else:
        v = _mapping(body["voting"], src, where(at, "voting"), VotingModel)
        vat = where(at, "voting")
        voting = Voting(
            order=_order(v["order"], src, where(vat, "order")),
            carried_by=_choice(v["carried_by"], src, where(vat, "carried_by"), CARRIED_BY),
            casting_vote=_choice(v.get("casting_vote", "none"), src,
                                 where(vat, "casting_vote"), CASTING),
        )
    numbers = {}
    for key in ("quorum", "interests"):
        if body.get(key) is None:
            numbers[key] = "" if base is None else (
                base.quorum_order if key == "quorum" else base.interests_order)
        else:
            n = _mapping(body[key], src, where(at, key), NumberedModel)
            numbers[key] = _order(n["order"], src, where(where(at, key), "order"))
    return Orders(voting=voting, quorum_order=numbers["quorum"],
                  interests_order=numbers["interests"])


def parse_standing_orders(text: str, source: str = "standing_orders.yaml",
                          sha256: str = "") -> StandingOrders:
    """Validate and build the orders from the file's text; errors name the key.
    A programme's section is laid over the default: an order it leaves out is
    the default's."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise StandingOrdersError(source, "", f"not valid YAML: {exc}") from None
    body = _mapping(raw, source, "", StandingOrdersFile)
    name, version = str(body["name"]), str(body["version"])
    if not _NAME_RE.fullmatch(name):
        raise StandingOrdersError(source, "name", f"{name!r}: letters, digits, '.', '_' or '-'")
    if not _VERSION_RE.fullmatch(version):
        raise StandingOrdersError(
            source, "version", f"{version!r}: letters, digits, '.', '_', '+', '-'")
    default = _orders(body["default"], source, "default", None)
    found = body.get("programmes") or {}
    if not isinstance(found, dict):
        raise StandingOrdersError(source, "programmes",
                                  "must be a mapping of programme name to its orders")
    programmes = {str(k): _orders(v, source, where("programmes", str(k)), default)
                  for k, v in found.items()}
    return StandingOrders(name=name, version=version, title=str(body.get("title") or ""),
                          sha256=sha256, source=source, default=default,
                          programmes=programmes)


FORMAT: loader.Format[StandingOrders] = loader.Format(
    kind="standing_orders",
    build=lambda text, source, _path, sha: parse_standing_orders(text, source, sha),
    error=StandingOrdersError,
    source=loader.shown,
    unreadable=lambda fmt, p, _exc: fmt.error(str(p), "", "no such file"),
)


def orders_path(name_or_path: str | Path | None = None) -> Path:
    """The file: a path, or a name (``rules/<name>.yaml``); the shipped one by default."""
    if name_or_path is None or (isinstance(name_or_path, str) and not name_or_path.strip()):
        return DEFAULT_FILE
    if isinstance(name_or_path, Path):
        return name_or_path.resolve()
    text = name_or_path.strip()
    if "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_absolute() and not path.exists() and (RULES_DIR.parent / path).exists():
            path = RULES_DIR.parent / path
        return path.resolve()
    if not _NAME_RE.fullmatch(text):
        raise StandingOrdersError(
            text, "", "is not a name (letters, digits, '.', '_', '-') or a path to a YAML file")
    return RULES_DIR / f"{text}.yaml"


def load_standing_orders(name_or_path: str | Path | None = None) -> StandingOrders:
    """Read and validate a standing-orders file (cached while the file is unchanged)."""
    return loader.load(FORMAT, orders_path(name_or_path))
