"""Lists that scale (issue 14 item 4, issue 15 item 2): bids, grants, returns
and delegated decisions are paged, sorted, filtered and searched in SQL
(engine/read/listing.py, engine/read/lists.py) on the pages, the REST API and
the exports; a bad parameter is a 400 naming it; a page costs the same number
of statements at 10 rows as at 60 (no N+1)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moneykit import MEMBERS, OFFICER, SPONSOR, money_board
from openpyxl import load_workbook
from sqlalchemy import event, func, select
from sqlmodel import Session
from webkit import api_token, bearer, set_passwords, sign_in

from engine.domain.errors import ValidationError
from engine.read import kept, lists
from engine.read.listing import like_pattern, read_query
from engine.store.models import AuditEvent, Bid, Return
from quorum_web.app import create_app

ORGS = ["Rutland CC", "Melton BC", "Harborough DC"]
N = 60  # bids (and grants) added to the money board's three


def _title(i: int) -> str:
    # every fifth title holds a literal "50%_off": a search for "%_" finds only those
    extra = " 50%_off" if i % 5 == 0 else ""
    return f"Project {i:02d} {'Shared' if i % 3 == 0 else 'local'} service{extra}"


def build(url: str, n: int = N, delegated: int = 12, actions: int = 12):
    """The money board plus ``n`` bids in round R3, all approved (``n`` grants),
    a year of returns, ``delegated`` delegated decisions and ``actions`` actions."""
    q, engine, clock = money_board(url)
    clock.set(dt.date(2011, 5, 1))
    q.execute("open_round", {"ref": "R3", "name": "Many", "pot": "Projects",
                             "closes": "2011-05-20", "rules": "efficiency-bids-2011"}, OFFICER)
    q.execute_batch([
        ("submit_bid", {"title": _title(i), "sponsor": ORGS[i % 3], "grant": f"{1000 + 10 * i}",
                        "savings": "10,000 per annum", "partnership": "no", "round": "R3",
                        "milestones": [{"outcome": "Done", "due": "2011-12-31",
                                        "payment": f"{1000 + 10 * i}"}]})
        for i in range(n)
    ], OFFICER)
    q.execute_batch([
        ("submit_bid", {"title": f"Delegated {i:02d}", "sponsor": ORGS[i % 3], "grant": "2,000",
                        "savings": "10,000 per annum", "partnership": "no", "pot": "Projects"})
        for i in range(delegated)
    ], OFFICER)
    clock.set(dt.date(2011, 5, 21))
    q.execute("close_round", {"round": "R3"}, OFFICER)
    q.execute("score_round", {"round": "R3"}, OFFICER)
    q.execute("schedule_meeting", {"ref": "BOARD-JUN", "title": "Board", "date": "2011-06-01",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)
    clock.set(dt.date(2011, 6, 1))
    q.execute("record_attendance", {"meeting": "BOARD-JUN", "present": MEMBERS}, OFFICER)
    with engine.connect() as c:
        r3 = list(c.execute(select(Bid.ref).where(Bid.title.like("Project %"))).scalars())
        dd = list(c.execute(select(Bid.ref).where(Bid.title.like("Delegated %"))).scalars())
    q.execute_batch([("decide", {"meeting": "BOARD-JUN", "item": r, "outcome": "approve"})
                     for r in r3], OFFICER)
    q.execute_batch([("request_delegated_decision",
                      {"bid": r, "reasons": "Small and urgent", "alternatives": "None"})
                     for r in dd], OFFICER)
    q.execute_batch([("record_action", {"meeting": "BOARD-JUN", "what": f"Chase item {i}",
                                        "owner": ["Olive", "Fay", "Dee"][i % 3],
                                        "due": f"2011-07-{1 + i:02d}"})
                     for i in range(actions)], OFFICER)
    clock.set(dt.date(2012, 6, 1))
    q.execute("sweep", {}, "system")
    return q, engine, clock


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("lists")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUORUM_CHECKPOINT_DIR", str(folder / "checkpoints"))
        url = f"sqlite:///{folder / 'quorum.db'}"
        q, engine, clock = build(url)
        set_passwords(q, OFFICER, SPONSOR)
        app = create_app(url, scheduler=False, clock=clock)
        officer, sponsor = TestClient(app), TestClient(app)
        assert sign_in(officer, OFFICER).status_code == 303
        assert sign_in(sponsor, SPONSOR).status_code == 303
        yield {"q": q, "engine": engine, "clock": clock, "app": app, "officer": officer,
               "sponsor": sponsor, "token": api_token(q, OFFICER)}
        officer.close()
        sponsor.close()


ROW = '<tr class="govuk-table__row"><td class="govuk-table__cell">'  # a list's row, first cell
EVENT_ROW = '<tr class="govuk-table__row event">'  # the audit trail's


def refs_on(html: str, prefix: str) -> list[str]:
    return re.findall(rf'{ROW}<a href="/{prefix}/([^"]+)">', html)


# ------------------------------------------------------------------ the query


def test_parameters_are_read_once_and_bad_ones_refused_by_name() -> None:
    spec = lists.BIDS
    lq = read_query(spec, {"page": "2", "per_page": "10", "sort": "title",
                           "direction": "desc", "q": "  payroll ", "state": "submitted"})
    assert (lq.page, lq.per_page, lq.sort, lq.direction, lq.q) == (2, 10, "title", "desc",
                                                                    "payroll")
    assert lq.filters == {"state": "submitted"}
    defaults = read_query(spec, {"format": "csv", "page": ""})
    assert (defaults.page, defaults.per_page, defaults.sort) == (1, 50, "ref")
    cases = {
        "page": ({"page": "0"}, "page: 0 is out of range; use a whole number from 1 to 1000000"),
        "per_page": ({"per_page": "5000"}, "use a whole number from 1 to 200"),
        "sort": ({"sort": "id; drop table bid"}, "use one of ref, sponsor, title, grant"),
        "direction": ({"direction": "up"}, "use asc or desc"),
        "state": ({"state": "lost"}, "use one of new, submitted"),
        "q": ({"q": "x" * 101}, "at most 100 characters"),
    }
    for name, (params, words) in cases.items():
        with pytest.raises(ValidationError) as refused:
            read_query(spec, params)
        assert refused.value.field == name
        assert refused.value.message.startswith(f"{name}: ") and words in refused.value.message


def test_search_escapes_wildcards() -> None:
    assert like_pattern("50%_Off\\") == "%50\\%\\_off\\\\%"


# ------------------------------------------------------------------ pages


def test_bids_page_pages_sorts_filters_and_searches(world) -> None:
    officer = world["officer"]
    first = officer.get("/bids?per_page=10")
    assert first.status_code == 200
    total = N + 12 + 3
    assert f"Bids ({total}," in first.text
    assert "Page 1 of 8" in first.text and 'rel="next"' in first.text
    assert 'rel="prev"' not in first.text
    assert 'class="govuk-pagination"' in first.text and 'aria-current="page"' in first.text
    seen = refs_on(first.text, "bids")
    assert len(seen) == 10 and seen == sorted(seen)
    last = officer.get("/bids?per_page=10&page=8")
    assert len(refs_on(last.text, "bids")) == total - 70 and 'rel="prev"' in last.text
    # sorted by title, descending: the header says so and the rows follow
    by_title = officer.get("/bids?sort=title&direction=desc&per_page=100")
    assert 'aria-sort="descending"><a href="?sort=title' in by_title.text
    with Session(world["engine"]) as s:
        titles = {b.ref: b.title.lower() for b in s.exec(select(Bid)).scalars()}
    shown = refs_on(by_title.text, "bids")
    assert [titles[r] for r in shown] == sorted(titles.values(), reverse=True)
    # a filter and a search, case-insensitive, across the sponsor's name too
    rutland = [i for i in range(N) if i % 3 == 0]  # also the "Shared" titles
    shared = officer.get("/bids?authority=Rutland+CC&q=SHARED&per_page=100")
    assert len(refs_on(shared.text, "bids")) == len(rutland) + 1  # and "Shared ICT"
    assert refs_on(officer.get("/bids?authority=Melton+BC&q=SHARED").text, "bids") == []
    by_name = officer.get("/bids?q=rutland&per_page=100")  # the sponsor's name
    assert len(refs_on(by_name.text, "bids")) == len(rutland) + 4 + 2
    # "%" and "_" are literal: only the titles holding "%_"
    literal = officer.get("/bids", params={"q": "%_", "per_page": 100})
    assert len(refs_on(literal.text, "bids")) == len([i for i in range(N) if i % 5 == 0])
    # the links: the exports keep the filters, the sort links keep them and go to page 1
    page = officer.get("/bids?state=submitted&page=1")
    assert 'href="/bids?state=submitted&amp;format=csv"' in page.text
    assert 'href="?state=submitted&amp;sort=title&amp;direction=asc"' in page.text
    assert officer.get("/bids?round=R3").text.count("/rounds/R3/paper.pdf") == 1


def test_sponsor_sees_only_its_own_authority(world) -> None:
    sponsor = world["sponsor"]
    page = sponsor.get("/bids?per_page=200")
    own = sum(1 for i in range(N) if i % 3 == 0) + 4 + 2  # R3, delegated asks, the board's
    assert f"Bids ({own}," in page.text
    assert 'id="list-authority"' not in page.text  # not offered other authorities
    other = sponsor.get("/bids?q=melton")
    assert refs_on(other.text, "bids") == []
    grants = sponsor.get("/grants?per_page=200")
    assert len(refs_on(grants.text, "grants")) == sum(1 for i in range(N) if i % 3 == 0) + 1


@pytest.mark.parametrize(
    ("path", "prefix", "sort"),
    [("/bids", "bids", "grant"), ("/grants", "grants", "awarded"),
     ("/returns", "returns", "authority"), ("/delegated", "delegated", "amount"),
     ("/actions", "meetings", "owner")],
)
def test_every_list_pages_in_order(world, path: str, prefix: str, sort: str) -> None:
    """Each list, walked page by page in a sort: every row once, in order."""
    officer = world["officer"]
    walked: list[str] = []
    url = f"{path}?sort={sort}&direction=desc&per_page=7"
    while True:
        got = officer.get(url)
        assert got.status_code == 200, got.text
        walked += refs_on(got.text, prefix)
        nxt = re.search(r'<a class="govuk-link govuk-pagination__link" href="([^"]+)" rel="next"',
                        got.text)
        if nxt is None:
            break
        url = nxt.group(1).replace("&amp;", "&")
        assert url.startswith(path + "?")
    total = int(re.search(r"\((\d+)[,)]", officer.get(path).text).group(1))
    if prefix == "meetings":  # an action links to its meeting: count rows, not refs
        walked = [f"{i}" for i in range(len(walked))]
    assert len(walked) == len(set(walked)) == total > 7


def test_returns_filters(world) -> None:
    officer = world["officer"]
    late = officer.get("/returns?show=late&per_page=200")
    assert late.status_code == 200
    assert len(refs_on(late.text, "returns")) > 0
    assert "Late returns paper" not in late.text  # no meeting after 1 Jun 2012
    every = officer.get("/returns?per_page=200")
    assert "Returns (" in every.text
    savings = officer.get("/returns?kind=savings&programme=P&per_page=200")
    assert all("savings" in row for row in re.findall(rf"{ROW}.*?</tr>", savings.text))


def test_bad_parameters_are_a_400_naming_them_and_change_nothing(world) -> None:
    officer = world["officer"]
    with world["engine"].connect() as c:
        before = c.execute(select(func.count()).select_from(AuditEvent)).scalar()
    for path, name, words in [
        ("/bids?sort=secret", "sort", "use one of ref, sponsor"),
        ("/grants?page=x", "page", "not a number"),
        ("/returns?show=lost", "show", "use one of due, late"),
        ("/delegated?direction=sideways", "direction", "use asc or desc"),
        ("/bids?page=999", "page", "past the last page"),
        ("/bids?per_page=0", "per_page", "from 1 to 200"),
        ("/bids?page=99999999999999999999", "page", "from 1 to 1000000"),
    ]:
        got = officer.get(path)
        assert got.status_code == 400, path
        assert f"{name}: " in got.text and words in got.text, (path, got.text[-600:])
        assert "<html" in got.text.lower()  # the site's own error page
    api = officer.get("/api/v1/bids?sort=secret", headers=bearer(world["token"]))
    assert api.status_code == 400 and api.json()["field"] == "sort"
    assert officer.get("/grants?page=x&format=csv").status_code == 400
    with world["engine"].connect() as c:
        assert c.execute(select(func.count()).select_from(AuditEvent)).scalar() == before


# ------------------------------------------------------------------ N+1


@contextmanager
def counting(engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(conn, cursor, statement, params, context, many) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


SMALL = ("/delegated", "/api/v1/delegated-decisions", "/actions", "/api/v1/actions")


@pytest.mark.parametrize("path", ["/bids", "/grants", "/returns", "/delegated", "/actions",
                                  "/audit", "/api/v1/bids", "/api/v1/grants", "/api/v1/returns",
                                  "/api/v1/delegated-decisions", "/api/v1/actions",
                                  "/api/v1/audit/events"])
def test_a_page_costs_the_same_statements_at_10_rows_as_at_60(world, path: str) -> None:
    officer, engine = world["officer"], world["app"].state.engine
    headers = bearer(world["token"]) if path.startswith("/api") else {}
    counts = {}
    for size in (10, 60) if path not in SMALL else (3, 12):
        officer.get(f"{path}?per_page={size}", headers=headers)  # warm (caches, directory)
        with counting(engine) as statements:
            got = officer.get(f"{path}?per_page={size}", headers=headers)
        assert got.status_code == 200
        rows = (len(got.json()) if path.startswith("/api")
                else len(re.findall(rf'{ROW}<a href="/|{EVENT_ROW}', got.text)))
        assert rows == size, (path, size, rows)
        counts[size] = len(statements)
    small, large = counts.values()
    assert small == large, (path, counts)
    assert large <= 25, (path, counts)


def test_the_delegated_page_is_flat_in_the_number_of_bids_waiting(tmp_path) -> None:
    """/delegated reads no bid to offer its request form (the bid is typed): the
    same statements and the same page at 1 bid waiting for a decision as at 41."""
    url = f"sqlite:///{tmp_path / 'quorum.db'}"
    q, engine, clock = money_board(url)  # one bid waiting ("Delegated ask")
    set_passwords(q, OFFICER)
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as officer:
        assert sign_in(officer, OFFICER).status_code == 303
        seen = []
        for more in (0, 40):
            q.execute_batch([
                ("submit_bid", {"title": f"Waiting {i:02d}", "sponsor": ORGS[i % 3],
                                "grant": "2,000", "savings": "10,000 per annum",
                                "partnership": "no", "pot": "Projects"})
                for i in range(more)
            ], OFFICER)
            officer.get("/delegated")  # warm (caches, directory)
            with counting(engine) as statements:
                page = officer.get("/delegated")
            assert page.status_code == 200 and 'id="form-request_delegated"' in page.text
            assert "Waiting" not in page.text  # no bid listed
            seen.append((len(statements), len(page.text)))
        with engine.connect() as c:
            assert c.execute(select(func.count()).select_from(Bid)
                             .where(Bid.state == "submitted")).scalar() == 41
    (few, few_bytes), (many, many_bytes) = seen
    assert few == many, seen
    assert abs(few_bytes - many_bytes) < 200, seen  # the form's key and token differ


def test_a_lists_totals_are_kept_through_score_overrides_only(tmp_path) -> None:
    """A list's count and sums (every matching row read) are kept between requests:
    a score override leaves them standing; a new bid counts at once."""
    url = f"sqlite:///{tmp_path / 'quorum.db'}"
    q, engine, clock = money_board(url)
    set_passwords(q, OFFICER)
    q.execute("open_round", {"ref": "R9", "name": "Late", "pot": "Projects",
                             "closes": "2011-10-20", "rules": "efficiency-bids-2011"}, OFFICER)
    ask = q.execute("submit_bid", {"title": "Scored", "sponsor": ORGS[0], "grant": "1,000",
                                   "savings": "5,000 per annum", "partnership": "no",
                                   "round": "R9"}, OFFICER)["ref"]
    clock.set(dt.date(2011, 10, 21))
    q.execute("close_round", {"round": "R9"}, OFFICER)
    q.execute("score_round", {"round": "R9"}, OFFICER)
    app = create_app(url, scheduler=False, clock=clock)

    def heading() -> str:
        return re.search(r"<h1[^>]*>(Bids \(.*?\))</h1>", officer.get("/bids").text).group(1)

    with TestClient(app) as officer:
        assert sign_in(officer, OFFICER).status_code == 303
        assert heading() == "Bids (4, £191,000 requested)"
        drawn = kept.DRAWN["list totals"]
        q.execute("override_score", {"ref": ask, "criterion": "partnership",
                                     "points": 0, "reason": "recheck"}, OFFICER)
        assert heading() == "Bids (4, £191,000 requested)"
        assert kept.DRAWN["list totals"] == drawn  # stood
        q.execute("submit_bid", {"title": "One more", "sponsor": ORGS[0], "grant": "2,000",
                                 "savings": "10,000 per annum", "partnership": "no",
                                 "pot": "Projects"}, OFFICER)
        assert heading() == "Bids (5, £193,000 requested)"
        assert kept.DRAWN["list totals"] == drawn + 1


# ------------------------------------------------------------------ API


def test_api_collections_page_with_headers_and_keep_their_shape(world) -> None:
    officer, auth = world["officer"], bearer(world["token"])
    everything = officer.get("/api/v1/bids", headers=auth)
    assert everything.status_code == 200
    body = everything.json()
    assert isinstance(body, list) and len(body) == N + 15  # under the default page size
    assert everything.headers["X-Total-Count"] == str(N + 15)
    assert "Link" not in everything.headers and everything.headers["X-Pages"] == "1"
    first = officer.get("/api/v1/grants?per_page=20&sort=awarded&direction=desc", headers=auth)
    assert first.headers["X-Total-Count"] == str(N + 2) and first.headers["X-Pages"] == "4"
    assert [g["awarded_pence"] for g in first.json()] == sorted(
        (g["awarded_pence"] for g in first.json()), reverse=True)
    link = first.headers["Link"]
    assert 'rel="next"' in link and 'rel="prev"' not in link
    nxt = re.search(r"<([^>]+)>; rel=\"next\"", link).group(1)
    second = officer.get(nxt, headers=auth)
    assert second.headers["X-Page"] == "2" and 'rel="prev"' in second.headers["Link"]
    assert not {g["ref"] for g in first.json()} & {g["ref"] for g in second.json()}
    found = officer.get("/api/v1/returns?q=MELTON&show=late&per_page=5", headers=auth)
    assert found.status_code == 200
    assert {r["organisation"] for r in found.json()} == {"Melton BC"}
    assert all(r["days_late"] > 0 for r in found.json())
    one = officer.get(f"/api/v1/returns/{found.json()[0]['ref']}", headers=auth)
    assert one.json() == found.json()[0]
    past = officer.get("/api/v1/grants?per_page=20&page=9", headers=auth)
    assert past.status_code == 200 and past.json() == []  # past the last page: empty
    assert 'rel="prev"' in past.headers["Link"] and past.headers["X-Pages"] == "4"
    dd = officer.get("/api/v1/delegated-decisions?per_page=5", headers=auth)
    assert len(dd.json()) == 5 and dd.headers["X-Total-Count"] == "13"  # and the board's
    ref = dd.json()[0]["ref"]
    assert officer.get(f"/api/v1/delegated-decisions/{ref}", headers=auth).json()["ref"] == ref


# ------------------------------------------------------------------ exports


def test_exports_stream_every_matching_row_in_the_pages_order(world) -> None:
    officer = world["officer"]
    got = officer.get("/bids?format=csv&q=shared&sort=title&per_page=5&page=2")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert len(rows) == sum(1 for i in range(N) if i % 3 == 0) + 1  # every page, not page 2
    assert [r["Title"].lower() for r in rows] == sorted(r["Title"].lower() for r in rows)
    # more rows than one run of 500: built and sent a run at a time, all of them, in order
    every = officer.get("/returns?format=csv&sort=ref&direction=desc")
    refs = [r["Ref"] for r in csv.DictReader(io.StringIO(every.content.decode("utf-8-sig")))]
    with world["engine"].connect() as c:
        assert len(refs) == c.execute(select(func.count()).select_from(Return)).scalar() > 500
    assert refs == sorted(refs, reverse=True) and len(set(refs)) == len(refs)
    book = officer.get("/returns?format=xlsx&show=late")
    assert book.status_code == 200
    ws = load_workbook(io.BytesIO(book.content)).active
    header = [c.value for c in ws[1]]
    assert header[0] == "Ref" and ws.freeze_panes == "A2"
    late_total = int(officer.get("/api/v1/returns?show=late&per_page=1",
                                 headers=bearer(world["token"])).headers["X-Total-Count"])
    assert ws.max_row - 1 == late_total
    days = header.index("Days late") + 1
    assert all(ws.cell(row=r, column=days).value > 0 for r in range(2, ws.max_row + 1))


# ------------------------------------------------------------------ the property


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["bids", "grants", "returns", "delegated", "actions", "audit"]),
    sort_index=st.integers(0, 6),
    direction=st.sampled_from(["asc", "desc"]),
    per_page=st.integers(1, 40),
    q=st.sampled_from(["", "shared", "%", "_", "rutland", "b-", "olive", "item 1"]),
)
def test_all_pages_give_each_row_exactly_once(
    world, name: str, sort_index: int, direction: str, per_page: int, q: str
) -> None:
    walk_pages(world["engine"], world["clock"].today(), name, sort_index, direction, per_page, q)


def walk_pages(engine, today, name, sort_index, direction, per_page, q) -> None:
    spec = lists.spec_of(name, today)
    sort = list(spec.sorts)[sort_index % len(spec.sorts)]
    params = {"sort": sort, "direction": direction, "per_page": str(per_page), "q": q}
    seen: list[str] = []
    with Session(engine) as s:
        page_no, pages = 1, 1
        while page_no <= pages:
            lq = read_query(spec, {**params, "page": str(page_no)})
            page, rows = lists.page_of(s, name, lq, today)
            assert len(rows) == len(page.keys)
            seen += [r["ref"] for r in rows]
            pages, page_no = page.pages, page_no + 1
        everything = list(lists.every_row(s, name, read_query(spec, params), today))
    assert len(seen) == len(set(seen)) == page.total
    assert [r["ref"] for r in everything] == seen  # the export's order is the pages' order


# ------------------------------------------------------------------ PostgreSQL


def test_paging_and_search_on_postgresql(pg_url: str, tmp_path, monkeypatch) -> None:
    _, engine, clock = build(pg_url, n=15, delegated=4)
    today = clock.today()
    for name in ("bids", "grants", "returns", "delegated", "actions", "audit"):
        for sort_index in range(3):
            walk_pages(engine, today, name, sort_index, "desc", 4, "")
    walk_pages(engine, today, "bids", 2, "asc", 3, "%_")
    with Session(engine) as s:
        lq = read_query(lists.BIDS, {"q": "%_", "per_page": "50"})
        page, rows = lists.page_of(s, "bids", lq, today)
        assert page.total == 3 and all("50%_off" in r["title"] for r in rows)
        upper = read_query(lists.BIDS, {"q": "SHARED", "per_page": "50"})
        assert lists.page_of(s, "bids", upper, today)[0].total == 5 + 1  # and "Shared ICT"


def test_actions_and_the_audit_trail(world) -> None:
    officer, auth = world["officer"], bearer(world["token"])
    actions = officer.get("/actions?sort=due&direction=asc&per_page=5")
    assert actions.status_code == 200 and "Actions (12)" in actions.text
    assert re.findall(r"Chase item (\d+)", actions.text) == ["0", "1", "2", "3", "4"]
    fay = officer.get("/api/v1/actions?q=fay", headers=auth).json()
    assert {a["owner"] for a in fay} == {"Fay"} and len(fay) == 4
    trail = officer.get("/audit?per_page=10")
    assert trail.status_code == 200 and 'aria-sort="descending"' in trail.text
    event = f'{EVENT_ROW}<td class="govuk-table__cell govuk-table__cell--numeric num">'
    seqs = [int(n) for n in re.findall(rf"{event}(\d+)<", trail.text)]
    assert len(seqs) == 10 and seqs == sorted(seqs, reverse=True)
    with world["engine"].connect() as c:
        assert seqs[0] == c.execute(select(func.max(AuditEvent.seq))).scalar()
    events = officer.get("/api/v1/audit/events?item=BOARD-JUN&per_page=500", headers=auth)
    assert events.status_code == 200
    assert {e["item"] for e in events.json()} == {"BOARD-JUN"}
    assert {"schedule_meeting", "record_attendance"} <= {
        e["command"] for e in events.json()}
    assert world["sponsor"].get("/audit").status_code == 403
    assert world["sponsor"].get("/api/v1/audit/events").status_code == 403
    csv_rows = list(csv.DictReader(io.StringIO(
        officer.get("/audit?format=csv&command=record_action").content.decode("utf-8-sig"))))
    assert len(csv_rows) == 12 and {r["Command"] for r in csv_rows} == {"record_action"}
