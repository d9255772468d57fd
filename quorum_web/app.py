"""The web app: server-rendered pages and the REST API under /api/v1.

Pages (quorum_web/pages.py) and endpoints (quorum_web/api.py) are thin: they
read views or call ``Quorum.execute``, the same command path as the CLI.
Sign-in, sessions, CSRF, lock-out, tokens and roles: quorum_web/auth.py.

    create_app(url, *, scheduler=True, clock=None, https_only=None)

``clock``: the one clock every date rule reads (tests pass a FixedClock; the
lock-out and *My work* read it too). ``https_only``: mark the session cookie
``Secure`` (default from QUORUM_HTTPS_ONLY, off).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from engine.commands.service import Quorum
from engine.domain.clock import Clock, StartedClock, SystemClock
from engine.domain.errors import QuorumError
from engine.entry import scheduler as sch
from engine.read import views
from engine.settings import get_settings
from engine.store.db import make_engine
from quorum_web import (
    api,
    inputs,
    pages,
    pages_board,
    pages_notify,
    pages_people,
    pages_public,
    pages_setup,
    pages_sponsor,
    schemas,
)
from quorum_web.auth import SESSION_COOKIE, Auth, NotSignedIn, secret_key

log = logging.getLogger("quorum.web")

API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 2  # a 503 when the database is briefly out of reach
# pages only: the API docs page loads Swagger UI from its CDN
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _status(exc: QuorumError) -> int:
    """Invalid input is 400; other refusals keep their own status (403, 404, 409, 422)."""
    return 400 if exc.code == "invalid" else exc.http_status


def create_app(
    url: str | None = None,
    *,
    scheduler: bool = True,
    clock: Clock | None = None,
    https_only: bool | None = None,
) -> FastAPI:
    settings = get_settings()  # a bad QUORUM_* value stops the app here, naming it
    engine = make_engine(url)
    if clock is None:  # QUORUM_CLOCK_START: a rehearsal server's clock
        clock = StartedClock(settings.clock_start) if settings.clock_start else SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        sched = None
        if scheduler:
            sched = sch.start(engine, clock=clock)
        yield
        if sched is not None:
            sched.shutdown(wait=False)
        engine.dispose()

    app = FastAPI(
        title="Quorum",
        version="1",
        description=(
            "Grant programmes run by boards: bids, rounds, meetings, delegated decisions, "
            "grants, returns. Authenticate with `Authorization: Bearer <token>` "
            "(`quorum token create EMAIL`). Errors are JSON `{error, message, field?, item?}`. "
            "See docs/api.md."
        ),
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        dependencies=[Depends(inputs.clean_url)],  # no NUL, control or surrogate in a URL
    )
    app.state.engine = engine
    app.state.clock = clock
    app.state.quorum = Quorum(engine, clock)
    app.state.auth = Auth(engine, clock)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(engine),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_hours * 3600,  # the server-side row decides
        same_site="lax",
        https_only=settings.https_only if https_only is None else https_only,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # noqa: ANN001, ANN202
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("X-Frame-Options", "DENY")
            if not request.url.path.startswith("/api/v1/docs"):
                response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # ---------------------------------------------------------------- errors
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"error": "unauthenticated", "message": exc.message},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)

    @app.exception_handler(QuorumError)
    async def refused(request: Request, exc: QuorumError) -> Response:
        if _is_api(request):
            return JSONResponse(exc.to_dict(), status_code=_status(exc))
        titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 401: "Sign in"}
        status = _status(exc)
        return pages.error_page(request, status, titles.get(status, "Refused"), exc.message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        message = f"{'.'.join(where) or 'request'}: {first.get('msg', 'is not valid')}"
        if first.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        body = {"error": "invalid", "message": message}
        if where:
            body["field"] = where[0]
        if _is_api(request):
            return JSONResponse(body, status_code=400)
        return pages.error_page(request, 400, "Not understood", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}
        message = exc.detail if isinstance(exc.detail, str) else "refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        if _is_api(request):
            return JSONResponse(
                {"error": codes.get(exc.status_code, "error"), "message": message},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        return pages.error_page(request, exc.status_code, "Not found", message)

    @app.exception_handler(DBAPIError)
    async def database_unavailable(request: Request, exc: DBAPIError) -> Response:
        # A cut connection (PostgreSQL restarting, a failover) or a busy SQLite file
        # is not a bug: say so, and that the same request may be sent again (with its
        # Idempotency-Key a retry returns the first attempt's result if it was saved).
        if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
            return await crashed(request, exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__)
        message = ("the database could not be reached just now; try again in a moment "
                   "(an API retry with the same Idempotency-Key is safe)")
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if _is_api(request):
            return JSONResponse({"error": "unavailable", "message": message},
                                status_code=503, headers=headers)
        return pages.error_page(request, 503, "Try again in a moment", message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = "something went wrong on our side; nothing was saved. It has been logged."
        if _is_api(request):
            return JSONResponse({"error": "internal", "message": message}, status_code=500)
        return Response(message, status_code=500, media_type="text/plain")

    # ---------------------------------------------------------------- routes
    app.include_router(api.router)
    api.publish_commands(app)  # each command's contract in the OpenAPI document
    app.include_router(pages_sponsor.router)  # first: /bids/new before /bids/{ref}
    app.include_router(pages.router)
    app.include_router(pages_board.router)
    app.include_router(pages_people.router)
    app.include_router(pages_notify.router)  # notifications, catch-up, a whole section of My work
    app.include_router(pages_setup.router)  # programmes, authorities; set-up forms of lists
    app.include_router(pages_public.router)  # the public register: no sign-in
    app.mount("/static", StaticFiles(directory=str(pages.STATIC)), name="static")

    # the accessibility statement (GOV.UK model) and the licences of what the pages are
    # built on: public, linked from every page's footer
    @app.get("/accessibility", response_class=HTMLResponse, include_in_schema=False)
    def accessibility(request: Request) -> HTMLResponse:
        return pages.render(request, "accessibility.html")

    @app.get("/licences", response_class=HTMLResponse, include_in_schema=False)
    def licences(request: Request) -> HTMLResponse:
        return pages.render(request, "licences.html")

    @app.get("/healthz", response_model=schemas.Health, include_in_schema=False)
    def healthz() -> dict:
        with Session(engine) as s:
            s.execute(views.select_one())
        return {"status": "ok"}

    return app
