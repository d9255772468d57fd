"""No blocking work on the event loop: endpoints that touch the database are
plain ``def`` (FastAPI runs them in its thread pool); forms are read by an
``async`` dependency that only reads the body.

The live test holds the audit chain's head row locked on PostgreSQL (every
write transaction starts by locking it), so the commands it sends wait inside
the server for as long as the test likes. It then proves, by counting the
server's sessions waiting on that lock and by the order responses come back
in, that all N commands are in flight at once and that /healthz still answers
before any of them: no wall-clock threshold is involved. Were an endpoint to
run its transaction on the event loop, the first command would stop the loop:
the others would never reach the database and /healthz would not answer.
"""

from __future__ import annotations

import inspect
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from moneykit import OFFICER, SPONSOR, money_board
from sqlalchemy import text
from webkit import password_for, set_passwords

from quorum_web import auth
from quorum_web.app import create_app

N = 4  # commands in flight at once (below the engine's pool of 5 + 10 overflow)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
# async dependencies allowed: each only reads the request (body or a header): no
# database, no hashing. FastAPI's HTTPBearer reads the Authorization header.
ASYNC_DEPENDENCIES_ALLOWED = {auth.check_form_csrf}
ASYNC_DEPENDENCY_TYPES_ALLOWED = (HTTPBearer,)
# async endpoints allowed: each must hand its blocking part to run_in_threadpool (none today)
ASYNC_ENDPOINTS_THAT_OFFLOAD: set[str] = set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving the app on 127.0.0.1, in a thread of this process."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(600):  # until started (or the thread died)
            if self.server.started or not self.thread.is_alive():
                break
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _sign_in(client: httpx.Client) -> None:
    token = CSRF_RE.search(client.get("/login").text).group(1)
    done = client.post(
        "/login", data={"csrf_token": token, "email": OFFICER, "password": password_for(OFFICER)}
    )
    assert done.status_code == 303, done.text


def _waiting_on_locks(conn) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    ).scalar_one()


def test_healthz_answers_while_commands_wait_in_the_thread_pool(pg_url) -> None:
    q, engine, clock = money_board(pg_url)
    set_passwords(q, OFFICER, SPONSOR)
    app = create_app(pg_url, scheduler=False, clock=clock)
    done: list[str] = []  # the order responses came back in
    with LiveServer(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        _sign_in(client)
        csrf = CSRF_RE.search(client.get("/account").text).group(1)
        cookies = dict(client.cookies)

        def command(i: int) -> int:
            with httpx.Client(base_url=base, cookies=cookies, timeout=120) as c:
                # (issue 11: an officer no longer sets another's password; she sends a link)
                r = c.post(
                    "/do/request_password_reset", data={"csrf_token": csrf, "email": SPONSOR}
                )
            done.append("command")
            return r.status_code

        holder = engine.connect()
        watcher = engine.connect()
        pool = ThreadPoolExecutor(N)
        try:
            holder.begin()
            holder.execute(text("SELECT last_seq FROM audit_head WHERE id = 1 FOR UPDATE"))
            futures = [pool.submit(command, i) for i in range(N)]
            waiting = 0
            for _ in range(1200):  # all N inside the server, each waiting on the lock
                waiting = _waiting_on_locks(watcher)
                watcher.rollback()
                if waiting >= N or any(f.done() for f in futures):
                    break
                time.sleep(0.05)
            assert waiting == N, (
                f"only {waiting} of {N} commands reached the database while the first one "
                "waited: something blocks the event loop"
            )
            health = httpx.get(base + "/healthz", timeout=120)
            done.append("healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert not any(f.done() for f in futures)  # still in flight
            assert _waiting_on_locks(watcher) == N
            watcher.rollback()
        finally:
            holder.rollback()  # release: the commands go through, one by one
            holder.close()
            watcher.close()
            statuses = [f.result(timeout=120) for f in futures]
            pool.shutdown()
    assert statuses == [303] * N
    assert done == ["healthz"] + ["command"] * N
    engine.dispose()


def _async_dependencies(dependant: Dependant) -> list:
    found = []
    for sub in dependant.dependencies:
        call = sub.call
        method = None if inspect.isroutine(call) else type(call).__call__  # an instance
        if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(method):
            found.append(sub.call)
        found.extend(_async_dependencies(sub))
    return found


def _api_routes(routes: list) -> list[APIRoute]:
    """Every APIRoute, through included routers (FastAPI >= 0.16x wraps each
    ``include_router`` in an object holding ``original_router``) and mounts."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (inner := getattr(route, "original_router", None)) is not None:
            found.extend(_api_routes(inner.routes))
        elif isinstance(getattr(route, "routes", None), list):
            found.extend(_api_routes(route.routes))
    return found


def test_no_route_runs_blocking_work_on_the_event_loop(sqlite_url, engine) -> None:
    app = create_app(sqlite_url, scheduler=False)
    routes = _api_routes(app.routes)
    assert len(routes) > 40  # every page and API route, not an empty list
    async_endpoints = sorted(
        f"{sorted(r.methods)} {r.path} ({r.endpoint.__module__}.{r.endpoint.__name__})"
        for r in routes
        if inspect.iscoroutinefunction(r.endpoint)
        and r.endpoint.__name__ not in ASYNC_ENDPOINTS_THAT_OFFLOAD
    )
    assert async_endpoints == [], (
        "these endpoints are `async def`: they run on the event loop, so a transaction or a "
        "password hash there stops every other request; make them plain `def` (read a form "
        "with `form: dict = Depends(check_form_csrf)`) or offload with run_in_threadpool"
    )
    unexpected = {
        f"{r.path}: {getattr(call, '__qualname__', call)}"
        for r in routes
        for call in _async_dependencies(r.dependant)
        if call not in ASYNC_DEPENDENCIES_ALLOWED
        and not isinstance(call, ASYNC_DEPENDENCY_TYPES_ALLOWED)
    }
    assert unexpected == set()
    # the form-handling routes do read their form through the async dependency
    form_routes = {
        r.path
        for r in routes
        if any(d.call is auth.check_form_csrf for d in r.dependant.dependencies)
    }
    assert {
        "/login",
        "/logout",
        "/do/{command}",
        "/rounds/{ref}/whatif",
        "/delegated/{ref}/sign",
        "/bids/preview",
        "/grants/{ref}/milestones/{seq}/evidence",
    } <= form_routes
