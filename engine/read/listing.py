"""One way every list is paged, sorted, filtered and searched: in SQL.

A list declares what it allows (:class:`ListSpec`: the sort keys and the
columns each sorts by, the filters and their allowed values, the columns a
free-text search looks in, the unique key that breaks ties). A request's
parameters are read once into a typed :class:`ListQuery` (:func:`read_query`);
a bad one is refused with a message naming the parameter and what it accepts
(a ``ValidationError``: 400, page and API alike). :func:`run` turns the two
into SQL: ``WHERE`` (filters and search), one ``COUNT`` for the total, and
``ORDER BY`` the sort's columns then the unique key, ``LIMIT``/``OFFSET``; it
returns only the page's keys, in order, for the list's own view to build the
rows of (a fixed handful of queries per page, however long the list).

Nothing here builds words in SQL: a search is ``lower(column) LIKE :pattern``
with ``%``, ``_`` and the escape character escaped in the pattern, answered
from the search indexes (engine/store/search.py) where it can be: per table
searched, ``table.key IN (the keys the index finds)``, and with more than one
table the list's keys of each, in a UNION (:func:`search_condition`). SQLite: the
table's FTS5 trigram index (a phrase query of the lowered text, the same rows
as the LIKE); PostgreSQL: the same LIKE on that table alone, which its
pg_trgm indexes answer. A search shorter than 3 characters cannot use a
trigram index and keeps the scan (still one page at a time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    union,
)
from sqlalchemy import table as sa_table
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import ValidationError
from engine.read.kept import kept
from engine.store import search as search_index

TOTALS_STAND = frozenset({"override_score"})  # a score changes no list's rows or sums

Direction = Literal["asc", "desc"]
DIRECTIONS: tuple[Direction, ...] = ("asc", "desc")
MAX_SEARCH = 100  # characters of free text a search takes
MAX_PAGE = 1_000_000  # a page number (its OFFSET must fit the database's integers)
ESCAPE = "\\"

# the parameters every list reads; a filter may not take one of these names
COMMON = ("page", "per_page", "sort", "direction", "q")


@dataclass(frozen=True)
class Filter:
    """One filter: its label, the values it accepts (None: any value of at
    most MAX_SEARCH characters) and the condition a value gives."""

    label: str
    where: Callable[[str], ColumnElement[bool]]
    choices: Sequence[str] | None = None


@dataclass(frozen=True)
class ListSpec:
    """What one list allows. ``sorts``: key -> the columns it orders by;
    ``key``: a unique column, the last tie-breaker (so every row has exactly
    one place in any order); ``search``: the text columns ``q`` looks in."""

    name: str
    sorts: Mapping[str, Sequence[ColumnElement[Any]]]
    default_sort: str
    key: ColumnElement[Any]
    default_direction: Direction = "asc"
    search: Sequence[ColumnElement[Any]] = ()
    filters: Mapping[str, Filter] = field(default_factory=dict)
    per_page: int = 50
    max_per_page: int = 200

    def __post_init__(self) -> None:
        assert self.default_sort in self.sorts, (self.name, self.default_sort)
        assert not set(self.filters) & set(COMMON), self.name


class ListQuery(BaseModel):
    """A request for one page of a list, read and checked (:func:`read_query`)."""

    model_config = ConfigDict(frozen=True)

    page: int = 1
    per_page: int
    sort: str
    direction: Direction
    q: str = ""
    filters: dict[str, str] = {}


def _choices(values: Sequence[str]) -> str:
    return ", ".join(values)


def _whole(name: str, text: str, low: int, high: int | None) -> int:
    allowed = f"a whole number from {low}" + (f" to {high}" if high is not None else "")
    try:
        n = int(text.strip())
    except ValueError:
        raise ValidationError(
            f"{name}: {text!r} is not a number; use {allowed}", field=name
        ) from None
    if n < low or (high is not None and n > high):
        raise ValidationError(f"{name}: {n} is out of range; use {allowed}", field=name)
    return n


def page_number(text: str | None) -> int:
    """``?page=``: a page number from 1 (default 1), refused by name otherwise."""
    return _whole("page", text, 1, MAX_PAGE) if text else 1


@dataclass(frozen=True)
class Window:
    """A page of a list already in order (a section of My work, a meeting's agenda):
    page ``page`` of ``size`` items out of ``of``; what its Previous/Next and
    "Showing 201 to 400 of 20,000" need."""

    page: int
    size: int
    of: int

    @property
    def positions(self) -> slice:
        return slice((self.page - 1) * self.size, self.page * self.size)

    @property
    def first(self) -> int:
        return (self.page - 1) * self.size + 1

    @property
    def last(self) -> int:
        return max(self.first, min(self.page * self.size, self.of))

    @property
    def previous(self) -> bool:
        return self.page > 1

    @property
    def next(self) -> bool:
        return self.page * self.size < self.of

    @property
    def paged(self) -> bool:
        """More than one page: the links are shown."""
        return self.of > self.size


def read_query(
    spec: ListSpec,
    params: Mapping[str, Any],
    *,
    per_page: int | None = None,
    max_per_page: int | None = None,
) -> ListQuery:
    """The list parameters of a request (query string) checked against the
    list's spec; other parameters (``format``…) are left to their readers.
    An empty value means the default. ``per_page``, ``max_per_page``: other
    than the spec's (the REST API's)."""
    default_size = per_page or spec.per_page
    max_size = max_per_page or spec.max_per_page

    def get(name: str) -> str:
        value = params.get(name)
        return "" if value is None else str(value)

    page = page_number(get("page"))
    size = _whole("per_page", get("per_page"), 1, max_size) if get("per_page") else default_size
    sort = get("sort") or spec.default_sort
    if sort not in spec.sorts:
        raise ValidationError(
            f"sort: {sort!r} is not a sort of the {spec.name} list; use one of "
            f"{_choices(list(spec.sorts))}",
            field="sort",
        )
    direction = get("direction") or (spec.default_direction if sort == spec.default_sort else "asc")
    if direction not in DIRECTIONS:
        raise ValidationError(
            f"direction: {direction!r} is not a direction; use asc or desc", field="direction"
        )
    q = get("q").strip()
    if len(q) > MAX_SEARCH:
        raise ValidationError(f"q: a search takes at most {MAX_SEARCH} characters", field="q")
    filters: dict[str, str] = {}
    for name, f in spec.filters.items():
        value = get(name).strip()
        if not value:
            continue
        if f.choices is not None and value not in f.choices:
            raise ValidationError(
                f"{name}: {value!r} is not a {f.label.lower()} of the {spec.name} list; "
                f"use one of {_choices(list(f.choices))}",
                field=name,
            )
        if len(value) > MAX_SEARCH:
            raise ValidationError(f"{name}: at most {MAX_SEARCH} characters", field=name)
        filters[name] = value
    return ListQuery(page=page, per_page=size, sort=sort, direction=direction, q=q, filters=filters)


def like_pattern(text: str) -> str:
    """``%text%`` for a case-insensitive LIKE, the wildcards in ``text`` escaped."""
    escaped = (
        text.lower()
        .replace(ESCAPE, ESCAPE * 2)
        .replace("%", ESCAPE + "%")
        .replace("_", ESCAPE + "_")
    )
    return f"%{escaped}%"


def _fts_query(columns: Sequence[str], text: str) -> str:
    """An FTS5 query for ``text`` (already lowered) as one phrase in ``columns``:
    ``{a b} : "text"``, the phrase's double quotes doubled (FTS5's quoting)."""
    phrase = text.replace('"', '""')
    return "{" + " ".join(columns) + '} : "' + phrase + '"'


def _searched(spec: ListSpec) -> tuple[dict[Table, list[str]], list[ColumnElement[Any]]]:
    """The list's search columns: those with a search index, by table, and the rest."""
    by_table: dict[Table, list[str]] = {}
    others: list[ColumnElement[Any]] = []
    for c in spec.search:
        table = getattr(c, "table", None)
        name = getattr(c, "name", None)
        entry = search_index.SEARCHED.get(table.name) if isinstance(table, Table) else None
        if entry is not None and name in entry[1]:
            by_table.setdefault(table, []).append(name)  # type: ignore[arg-type]
        else:
            others.append(c)
    return by_table, others


def search_condition(
    spec: ListSpec, q: str, dialect: str, base: Select[Any] | None = None
) -> ColumnElement[bool]:
    """Rows where some search column contains ``q``, any case (``lower(column)
    LIKE '%q%'``): from the search indexes where there are ones (module doc).
    ``base`` (the list's ``select(key)``): more than one table searched is then
    ``key IN (base where table 1 matches UNION base where table 2 matches ...)``,
    each part led by its index, where an OR of the tables' look-ups would be
    tried on every row of the join (at 100,000 bids 2 ms against 14)."""
    pattern = like_pattern(q)

    def like(c: ColumnElement[Any]) -> ColumnElement[bool]:
        return func.lower(c).like(pattern, escape=ESCAPE)

    lowered = q.lower()
    if len(lowered) < search_index.MIN_INDEXED or dialect not in ("sqlite", "postgresql"):
        # a trigram index cannot answer 1 or 2 characters: the scan, bounded by paging
        return or_(*(like(c) for c in spec.search))
    by_table, others = _searched(spec)
    terms: list[ColumnElement[bool]] = [like(c) for c in others]
    for table, names in by_table.items():
        key_name = search_index.SEARCHED[table.name][0]
        key = table.c[key_name]
        if table.name in search_index.APPENDED and dialect != "sqlite":
            terms += [like(table.c[n]) for n in names]  # no index: scanned (search.py)
            continue
        if table.name in search_index.APPENDED:  # the rows newer than the index: scanned
            terms.append((key > search_index.indexed_upto(table.name))
                         & or_(*(like(table.c[n]) for n in names)))
        if dialect == "sqlite":
            fts = search_index.fts_table(table.name)
            index = sa_table(fts, column("rowid"))
            found = select(index.c.rowid).where(
                literal_column(f'"{fts}"').op("MATCH")(
                    bindparam(None, _fts_query(names, lowered), unique=True)
                )
            )
        else:
            inner = table.alias()
            found = select(inner.c[key_name]).where(or_(*(like(inner.c[n]) for n in names)))
        terms.append(key.in_(found))
    if base is not None and len(terms) > 1:
        keys = union(*(base.where(t).correlate(None) for t in terms))
        return base.selected_columns[0].in_(keys)
    return or_(*terms)


def conditions(
    spec: ListSpec, lq: ListQuery, dialect: str = "", base: Select[Any] | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a query: each filter given, and the search."""
    where = [spec.filters[name].where(value) for name, value in lq.filters.items()]
    if lq.q and spec.search:
        where.append(search_condition(spec, lq.q, dialect, base))
    return where


def ordering(spec: ListSpec, lq: ListQuery) -> list[Any]:
    """ORDER BY the sort's columns (missing values last either way), then the
    unique key in the same direction: a total order, so pages never overlap."""
    desc = lq.direction == "desc"
    cols = [*spec.sorts[lq.sort], spec.key]
    return [(c.desc() if desc else c.asc()).nulls_last() for c in cols]


@dataclass(frozen=True)
class Page:
    """One page of a list: the keys of its rows in order, the total matching,
    and the query it answers (for links: :meth:`link`)."""

    spec_name: str
    query: ListQuery
    keys: list[Any]
    total: int
    sums: dict[str, int]
    sorts: tuple[str, ...]
    defaults: tuple[int, str, str]  # per_page, sort, direction

    @property
    def page(self) -> int:
        return self.query.page

    @property
    def per_page(self) -> int:
        return self.query.per_page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.per_page))

    @property
    def first_row(self) -> int:
        return 0 if not self.keys else (self.page - 1) * self.per_page + 1

    @property
    def last_row(self) -> int:
        return (self.page - 1) * self.per_page + len(self.keys)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    def params(self, **changes: Any) -> dict[str, str]:
        """The query-string parameters of this page with ``changes`` (None
        drops one); defaults left out, so links stay short."""
        per_page, sort, direction = self.defaults
        values: dict[str, Any] = {
            **self.query.filters,
            "q": self.query.q,
            "sort": self.query.sort if self.query.sort != sort else None,
            "direction": self.query.direction
            if (self.query.sort, self.query.direction) != (sort, direction)
            else None,
            "per_page": self.query.per_page if self.query.per_page != per_page else None,
            "page": self.query.page if self.query.page != 1 else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def order_params(self) -> dict[str, str]:
        """The sort, direction and page size of this page (a search form keeps them)."""
        keep = ("sort", "direction", "per_page")
        return {k: v for k, v in self.params().items() if k in keep}

    def link(self, path: str = "", **changes: Any) -> str:
        """``path?query`` of this page with ``changes``, e.g. ``link(page=3)``."""
        qs = urlencode(self.params(**changes))
        return f"{path}?{qs}" if qs else (path or "?")

    def sort_link(self, key: str, path: str = "") -> str:
        """The link a column header gives: sorted by ``key``, the other way
        round if it is the sort now; back to the first page."""
        direction = "asc"
        if key == self.query.sort and self.query.direction == "asc":
            direction = "desc"
        return self.link(path, sort=key, direction=direction, page=None)

    def aria_sort(self, key: str) -> str:
        if key != self.query.sort:
            return "none"
        return "ascending" if self.query.direction == "asc" else "descending"

    def numbers(self) -> Iterator[int | None]:
        """Page numbers to show (GOV.UK pagination): the first, the last, the
        current and its neighbours; None where pages are skipped."""
        shown = sorted(
            {1, self.pages, self.page - 1, self.page, self.page + 1} & set(range(1, self.pages + 1))
        )
        prev = 0
        for n in shown:
            if n > prev + 1:
                yield None
            yield n
            prev = n

    def api_links(self, url: str) -> dict[str, str | None]:
        return {
            "next": self.link(url, page=self.page + 1) if self.has_next else None,
            "prev": self.link(url, page=self.page - 1) if self.has_prev else None,
        }


def run(
    db: Session | Connection,
    spec: ListSpec,
    base: Select[Any],
    lq: ListQuery,
    sums: Mapping[str, ColumnElement[Any]] | None = None,
    *,
    everything: bool = False,
    past_end: bool = False,
) -> Page:
    """One page of ``base`` (a ``select(spec.key).select_from(...)`` with the
    joins the sorts, filters and search need, and any scope already in its
    WHERE): two statements, the count (with ``sums`` of the matching rows)
    and the page's keys. A page past the last is refused (``past_end``: is
    empty instead, as the REST API answers). ``everything``: every matching
    key in order (exports), not one page."""
    bind = db.get_bind() if isinstance(db, Session) else db
    where = conditions(spec, lq, bind.dialect.name, base)
    sums = sums or {}
    counted = base.with_only_columns(
        func.count(),
        *(func.coalesce(func.sum(c), 0) for c in sums.values()),
        maintain_column_froms=True,  # the count still reads base's tables
    ).where(*where)
    # the count reads every matching row (100,000 bids: ~10 ms): kept through score
    # overrides, which change no list's rows or sums (engine/read/kept.py)
    compiled = counted.compile()
    key = (str(compiled), tuple(sorted((k, repr(v)) for k, v in compiled.params.items())))
    totals: tuple[Any, ...] = kept(db, "list totals", key, TOTALS_STAND,
                                   lambda: tuple(db.execute(counted).one()))
    total = int(totals[0])
    pages = max(1, math.ceil(total / lq.per_page))
    if lq.page > pages and not (everything or past_end):
        raise ValidationError(
            f"page: {lq.page} is past the last page of this list ({pages})", field="page"
        )
    keyed = base.where(*where).order_by(*ordering(spec, lq))
    if not everything:
        keyed = keyed.limit(lq.per_page).offset((lq.page - 1) * lq.per_page)
    keys: list[Any] = list(db.execute(keyed).scalars())
    return Page(
        spec_name=spec.name,
        query=lq,
        keys=keys,
        total=total,
        sums={name: int(v) for name, v in zip(sums, totals[1:], strict=True)},
        sorts=tuple(spec.sorts),
        defaults=(spec.per_page, spec.default_sort, spec.default_direction),
    )


def in_key_order(rows: Sequence[Any], keys: Sequence[Any], key_of: Callable[[Any], Any]) -> list:
    """``rows`` (built by a view in any order) in the order of ``keys``."""
    place = {k: i for i, k in enumerate(keys)}
    return sorted(rows, key=lambda r: place[key_of(r)])


def chunks(keys: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """``keys`` in runs of ``size`` (an export builds its rows a run at a time)."""
    for i in range(0, len(keys), size):
        yield keys[i : i + size]
