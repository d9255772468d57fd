"""The web app: server-rendered pages and the REST API under /api/v1.

Pages and endpoints are thin: they read views or call Quorum.execute, the
same command path as the CLI. (Sign-in, roles per page and the officer,
chair and sponsor pages arrive with issue 6.)
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from engine import audit, views
from engine.db import make_engine
from engine.errors import QuorumError
from engine.money import format_pence

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["gbp"] = format_pence


def create_app(url: str | None = None, *, scheduler: bool = True) -> FastAPI:
    engine = make_engine(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        sched = None
        if scheduler:
            from engine import scheduler as sch

            sched = sch.start(engine)
        yield
        if sched is not None:
            sched.shutdown(wait=False)
        engine.dispose()

    app = FastAPI(
        title="Quorum",
        version="1",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
    )

    @app.exception_handler(QuorumError)
    async def refused(_: Request, exc: QuorumError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        with Session(engine) as s:
            pots, bids = views.pots(s), views.bids(s)
        return TEMPLATES.TemplateResponse(
            request,
            "home.html",
            {
                "pots": pots,
                "bids": bids,
                "requested": sum(b["grant_requested_pence"] for b in bids),
            },
        )

    @app.get("/healthz")
    def healthz() -> dict:
        with Session(engine) as s:
            s.execute(views.select_one())
        return {"status": "ok"}

    @app.get("/api/v1/pots")
    def api_pots() -> list[dict]:
        with Session(engine) as s:
            return views.pots(s)

    @app.get("/api/v1/bids")
    def api_bids(state: str | None = None) -> list[dict]:
        with Session(engine) as s:
            return views.public(views.bids(s, state=state))

    @app.get("/api/v1/bids/{ref}")
    def api_bid(ref: str) -> dict:
        with Session(engine) as s:
            for b in views.public(views.bids(s)):
                if b["ref"] == ref:
                    return b
        raise HTTPException(404, detail=f"no bid {ref!r}")

    @app.get("/api/v1/audit/verify")
    def api_audit_verify() -> dict:
        with Session(engine) as s:
            r = audit.verify(s)
        return {
            "ok": r.ok,
            "events": r.events,
            "first_bad_seq": r.first_bad_seq,
            "message": r.message(),
        }

    return app
