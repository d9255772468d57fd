"""A list's search from its index (engine/store/search.py, engine/read/listing.py
``search_condition``) finds exactly the rows the ``lower(column) LIKE '%q%'`` scan
finds, on SQLite (FTS5 trigram tables kept by triggers) and PostgreSQL (pg_trgm
GIN indexes); the indexes follow inserts, updates and deletes; a migrated
database has the same search indexes as a new one."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moneykit import OFFICER, money_board
from sqlalchemy import select, text

from engine.entry import scheduler as scheduler_module
from engine.read import lists
from engine.read.listing import ListSpec, read_query, search_condition
from engine.store import search
from engine.store.db import create_schema, current_revision, head_revision, make_engine, upgrade

ORGS = ["Rutland CC", "Melton BC", "Harborough DC"]
N = 8  # bids

# letters that fold (ASCII and not), the LIKE wildcards and escape, FTS5's quote and
# syntax, spaces, and letters whose lower() changes length or turns into ASCII
TRICKY = "aAbBcCxX%_\\\"{}:*^ -éÉßẞİıKKΣσςǅ日本ﬃ"
chars = st.one_of(
    st.sampled_from(TRICKY),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
)
texts = st.text(chars, min_size=0, max_size=12)


@pytest.fixture(scope="module")
def board(request, tmp_path_factory):
    """A money board with ``N`` bids, per backend (module-wide: hypothesis reuses it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'quorum.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"t_search_property_{uuid.uuid4().hex[:12]}"
        url = server.create_database(name)
    q, engine, clock = money_board(url)
    clock.set(dt.date(2011, 5, 1))
    q.execute("open_round", {"ref": "R3", "name": "Many", "pot": "Projects",
                             "closes": "2011-05-20", "rules": "efficiency-bids-2011"}, OFFICER)
    q.execute_batch([
        ("submit_bid", {"title": f"Bid {i}", "sponsor": ORGS[i % 3], "grant": "1,000",
                        "savings": "10,000 per annum", "partnership": "no", "round": "R3",
                        "milestones": [{"outcome": "Done", "due": "2011-12-31",
                                        "payment": "1,000"}]})
        for i in range(N)
    ], OFFICER)
    yield engine
    engine.dispose()
    if request.param != "sqlite":
        server.drop_database(name)


def _indexed(conn: sa.Connection) -> int:
    if conn.dialect.name != "sqlite":
        return 0
    return conn.execute(text("SELECT count(*) FROM audit_event_search_docsize")).scalar_one()


def _found(conn: sa.Connection, spec: ListSpec, base: sa.Select, q: str, dialect: str,
           union: bool = False) -> list:
    where = search_condition(spec, q, dialect, base if union else None)
    return sorted(conn.execute(base.where(where)).scalars())


def _both(conn: sa.Connection, spec: ListSpec, base: sa.Select, q: str) -> tuple[list, list]:
    """(from the index, from the scan): dialect "" is the plain LIKE of every column.
    The index both ways: an OR of the tables' look-ups, and a UNION led by each."""
    scanned = _found(conn, spec, base, q, "")
    ored = _found(conn, spec, base, q, conn.dialect.name)
    unioned = _found(conn, spec, base, q, conn.dialect.name, union=True)
    assert ored == unioned, q
    return unioned, scanned


def _query(draw_from: list[str]) -> st.SearchStrategy[str]:
    """A query: 1-6 random characters, or a piece of a row's text in another case."""
    piece = st.sampled_from(draw_from or [""]).flatmap(
        lambda t: st.tuples(st.integers(0, len(t)), st.integers(1, 6), st.booleans()).map(
            lambda a: (t[a[0]:a[0] + a[1]].upper() if a[2] else t[a[0]:a[0] + a[1]])
        )
    )
    return st.one_of(st.text(chars, min_size=1, max_size=6), piece).filter(bool)


@pytest.mark.parametrize("board", ["sqlite", "postgresql"], indirect=True)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), titles=st.lists(texts, min_size=N, max_size=N),
       names=st.lists(texts, min_size=3, max_size=3),
       reasons=st.lists(texts, min_size=3, max_size=3))
def test_the_index_finds_what_the_scan_finds(board, data, titles, names, reasons):
    with board.connect() as conn:
        ids = list(conn.execute(text("SELECT id FROM bid ORDER BY id")).scalars())
        for i, t in zip(ids[-N:], titles, strict=True):  # the update triggers keep the index
            conn.execute(text("UPDATE bid SET title = :t WHERE id = :i"), {"t": t, "i": i})
        orgs = list(conn.execute(text("SELECT id FROM organisation ORDER BY id")).scalars())
        for i, (o, name) in enumerate(zip(orgs, names, strict=True)):
            conn.execute(text("UPDATE organisation SET name = :n WHERE id = :i"),
                         {"n": f"{name}#{i}", "i": o})
        seqs = list(conn.execute(text("SELECT seq FROM audit_event ORDER BY seq DESC LIMIT 3"))
                    .scalars())
        for s, r in zip(seqs, reasons, strict=True):  # rows as yet unindexed: appended
            conn.execute(text("UPDATE audit_event SET reason = :r WHERE seq = :s"),
                         {"r": r, "s": s})
        # the audit trail is indexed by catch-up, not triggers: all but its newest
        # line here, so the search reads the index and scans the line above it
        tail = conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
        search.catch_up(conn, limit=max(0, tail - 1 - _indexed(conn)))
        q = data.draw(_query([*titles, *names, *reasons]), label="q")
        bids = select(lists.BID_T.c.ref).select_from(
            lists.BID_T.join(lists.ORG_T, lists.ORG_T.c.id == lists.BID_T.c.sponsor_id))
        indexed, scanned = _both(conn, lists.BIDS, bids, q)
        assert indexed == scanned, (q, titles, names)
        audit = select(lists.AUDIT_T.c.seq)
        indexed, scanned = _both(conn, lists.AUDIT_LIST, audit, q)
        assert indexed == scanned, (q, reasons)
        conn.rollback()  # the next example starts from the same rows (so on a failure)


def test_a_long_enough_search_reads_the_index(db_url):
    """3 characters or more: the index (SQLite: the FTS5 table; PostgreSQL: the
    LIKE on the table alone); fewer: the plain LIKE."""
    eng = make_engine(db_url)
    create_schema(eng)
    dialect = eng.dialect.name
    sql = str(search_condition(lists.BIDS, "abc", dialect).compile(dialect=eng.dialect))
    assert ('"bid_search" MATCH' in sql) if dialect == "sqlite" else ("bid_1" in sql)
    short = str(search_condition(lists.BIDS, "ab", dialect).compile(dialect=eng.dialect))
    assert "MATCH" not in short and "IN (" not in short
    eng.dispose()


def test_updates_and_deletes_reach_the_index(db_url):
    q, engine, clock = money_board(db_url)
    clock.set(dt.date(2011, 5, 1))
    q.execute("open_round", {"ref": "R3", "name": "Many", "pot": "Projects",
                             "closes": "2011-05-20", "rules": "efficiency-bids-2011"}, OFFICER)
    q.execute("submit_bid", {"title": "Wheelie bins", "sponsor": "Rutland CC", "grant": "1,000",
                             "savings": "10,000 per annum", "partnership": "no", "round": "R3",
                             "milestones": [{"outcome": "Done", "due": "2011-12-31",
                                             "payment": "1,000"}]}, OFFICER)

    def refs(text_: str) -> list[str]:
        lq = read_query(lists.BIDS, {"q": text_})
        with engine.connect() as conn:
            return sorted(conn.execute(
                select(lists.BID_T.c.ref).select_from(lists.BID_T.join(
                    lists.ORG_T, lists.ORG_T.c.id == lists.BID_T.c.sponsor_id))
                .where(search_condition(lists.BIDS, lq.q, conn.dialect.name))).scalars())

    (ref,) = refs("wheelie")
    with engine.begin() as conn:
        conn.execute(text("UPDATE bid SET title = 'Street lights' WHERE ref = :r"), {"r": ref})
    assert refs("wheelie") == [] and refs("STREET LIG") == [ref]
    with engine.begin() as conn:  # the sponsor renamed: found by the new name only
        conn.execute(text("UPDATE organisation SET name = 'Oakham TC' WHERE name = 'Rutland CC'"))
    assert ref in refs("oakham") and refs("rutland") == []
    with engine.begin() as conn:
        for t in ("bid_partner", "milestone", "score"):
            conn.execute(text(f"DELETE FROM {t} WHERE bid_id IN "  # noqa: S608 - fixed names
                              "(SELECT id FROM bid WHERE ref = :r)"), {"r": ref})
        conn.execute(text("DELETE FROM bid WHERE ref = :r"), {"r": ref})
    assert refs("street") == []
    engine.dispose()


def _search_objects(eng: sa.Engine) -> list[tuple[str, str]]:
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            rows = conn.execute(text(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')"))
        else:
            rows = conn.execute(text("SELECT 'index', indexname FROM pg_indexes"))
        return sorted((t, n) for t, n in rows if search.is_search_object(n))


def test_a_migrated_database_has_the_search_indexes_of_a_new_one(db_url, tmp_path, request):
    migrated = make_engine(db_url)
    upgrade(migrated)
    objects = _search_objects(migrated)
    # one FTS5 table and three triggers per searched table (SQLite; no triggers on a
    # table only appended to: catch_up indexes it); an index per searched column
    # (PostgreSQL, pg_trgm being there in the tests' server; none on those appended to)
    if migrated.dialect.name == "sqlite":
        for table in search.SEARCHED:
            for suffix in ("_ai", "_ad", "_au"):
                made = ("trigger", search.fts_table(table) + suffix) in objects
                assert made == (table not in search.APPENDED), (table, suffix)
            assert ("table", search.fts_table(table)) in objects
    else:
        for table, (_, columns) in search.SEARCHED.items():
            for c in columns:
                made = ("index", search.trgm_index(table, c)) in objects
                assert made == (table not in search.APPENDED), (table, c)
    if db_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'new.db'}"
    else:
        name = f"t_search_new_{uuid.uuid4().hex[:12]}"
        other = request.getfixturevalue("pg_server").create_database(name)
    created = make_engine(other)
    create_schema(created)
    assert _search_objects(created) == objects
    migrated.dispose()
    created.dispose()
    if not db_url.startswith("sqlite"):
        request.getfixturevalue("pg_server").drop_database(name)


def test_without_pg_trgm_the_migration_succeeds_and_searches_scan(pg_server, caplog):
    """A role that may not create the extension (PostgreSQL: CREATE on the database):
    the migration still reaches the head, says why in a warning, makes no trigram
    index, and searches find the same rows by the scan."""
    suffix = uuid.uuid4().hex[:12]
    name, role = f"t_search_no_trgm_{suffix}", f"quorum_plain_{suffix}"
    url = pg_server.create_database(name)
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
    plain = make_engine(
        sa.make_url(url).set(username=role, password=None).render_as_string(hide_password=False))
    try:
        with caplog.at_level(logging.WARNING, logger="engine.store.search"):
            upgrade(plain)
        assert current_revision(plain) == head_revision()
        assert "pg_trgm could not be created" in caplog.text
        assert _search_objects(plain) == []
        with plain.begin() as conn:
            conn.execute(text(
                "INSERT INTO audit_event (seq, at, actor, command, item_ref, before, after, "
                "reason, prev_hash, hash, money, key_id) VALUES (1, 'x', 'a@x', 'submit_bid', "
                "'S-000120', '', '', '', '', '', '', ''), (2, 'x', 'a@x', 'decide', 'S-000200', "
                "'', '', '', '', '', '', '')"))
            assert _both(conn, lists.AUDIT_LIST, select(lists.AUDIT_T.c.seq), "s-0001") == (
                [1], [1])
    finally:
        plain.dispose()
        admin.dispose()
        pg_server.drop_database(name)
        maintenance = make_engine(pg_server.url)
        with maintenance.begin() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        maintenance.dispose()


def test_the_audit_trail_is_indexed_by_catch_up_not_by_each_command(sqlite_url) -> None:
    """No trigger writes the audit trail's index as a command appends its lines
    (each line indexed trigram by trigram made every command ~30 µs a line
    slower); catch_up indexes what was appended since, and a search finds a line
    appended after it by scanning above what the index holds."""
    q, engine, _clock = money_board(sqlite_url)
    audit = select(lists.AUDIT_T.c.seq)

    def found(conn: sa.Connection, words: str) -> list[int]:
        return sorted(conn.execute(audit.where(
            search_condition(lists.AUDIT_LIST, words, "sqlite", audit))).scalars())

    try:
        with engine.begin() as conn:
            triggers = conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'audit_event_search%'")).scalars().all()
            assert triggers == []
            before = found(conn, "submit_bid")
            assert before and _indexed(conn) == 0  # nothing indexed: all scanned
            lines = conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
            assert search.catch_up(conn, limit=10) == 10
            assert search.catch_up(conn) == lines - 10 and search.catch_up(conn) == 0
            assert found(conn, "submit_bid") == before  # from the index now
            plan = " ".join(str(r[3]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(audit.where(search_condition(
                    lists.AUDIT_LIST, "submit_bid", "sqlite", audit)).compile(
                        engine, compile_kwargs={"literal_binds": True}))))
            assert "audit_event_search" in plan, plan
        q.execute("register_organisation", {"name": "Zedshire CC"}, "system")
        with engine.connect() as conn:
            appended = found(conn, "zedshire")
            assert appended and min(appended) > lines  # found above the index, by scan
    finally:
        engine.dispose()


def test_the_scheduler_indexes_the_audit_trail_a_few_lines_a_transaction(
    sqlite_url, monkeypatch
) -> None:
    """The scheduler's catch-up job (engine/entry/scheduler.py) indexes every line
    appended since, SEARCH_CATCH_UP_ROWS a transaction until none is left."""
    _q, engine, clock = money_board(sqlite_url)
    monkeypatch.setattr(scheduler_module, "SEARCH_CATCH_UP_ROWS", 7)
    try:
        with engine.connect() as conn:
            lines = conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
            assert lines > 14 and _indexed(conn) == 0
        scheduler_module.QuorumScheduler(engine, clock=clock).run_search_catch_up()
        with engine.connect() as conn:
            assert _indexed(conn) == lines
            assert search.catch_up(conn) == 0
    finally:
        engine.dispose()
