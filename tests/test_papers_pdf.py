"""Board papers as PDF: WeasyPrint prints the HTML paper, fetching nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from moneykit import money_board
from sqlmodel import Session

from engine.domain.errors import QuorumError
from engine.read import views
from notifications import papers

REPO = Path(__file__).resolve().parents[1]


def pdf_text(pdf: bytes) -> str:
    """The text a PDF shows, enough to find words in WeasyPrint's output (no
    pdftotext or pypdf here): decompress the streams, read the fonts' ToUnicode
    maps, and decode every shown string with each map. Returns one line per
    (map, text object) decoding, runs joined by one space (a title wrapped in a
    table cell reads as one phrase); a phrase set in one font is found whole."""
    streams = []
    for m in re.finditer(rb"stream\r?\n", pdf):
        end = pdf.find(b"endstream", m.end())
        try:
            streams.append(zlib.decompress(pdf[m.end() : end]))
        except zlib.error:
            streams.append(pdf[m.end() : end])
    cmaps = []
    for s in streams:
        if b"begincmap" not in s:
            continue
        cmap: dict[str, str] = {}
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", s, re.S):
            for src, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
                cmap[src.decode().lower()] = bytes.fromhex(dst.decode()).decode("utf-16-be")
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", s, re.S):
            for lo, hi, dst in re.findall(
                rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block
            ):
                width = len(lo)
                for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                    cmap[f"{code:0{width}x}"] = chr(int(dst, 16) + i)
        cmaps.append(cmap)
    lines = []
    for s in streams:
        for obj in re.findall(rb"BT(.*?)ET", s, re.S):
            shown = re.findall(rb"\[(.*?)\]\s*TJ|<([0-9a-fA-F]+)>\s*Tj", obj, re.S)
            runs = []  # one per show operator: a run of text on one line
            for arr, single in shown:
                codes = []
                for h in re.findall(rb"<([0-9a-fA-F]+)>", arr) + ([single] if single else []):
                    h = h.decode().lower()
                    codes += [h[i : i + 4] for i in range(0, len(h), 4)]
                runs.append(codes)
            for cmap in cmaps:
                text = " ".join("".join(cmap.get(c, "\ufffd") for c in run) for run in runs)
                lines.append(" ".join(text.split()))
    return "\n".join(lines)


@pytest.fixture
def board(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    yield sqlite_url, engine
    engine.dispose()


def test_bids_paper_as_pdf(board) -> None:
    _, engine = board
    with Session(engine) as s:
        rank = views.round_ranking(s, "R1")
    pdf = papers.render_pdf("bids", {"round": rank, "overrides": []})
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    assert "Shared ICT" in text and "Invest to save" in text
    assert "Rutland CC" in text


def test_papers_fetch_nothing() -> None:
    wp = papers._weasyprint()
    fetch = papers._no_network_fetcher(wp)
    for url in ("http://example.com/logo.png", "https://example.com/a.css", "file:///etc/passwd"):
        with pytest.raises(Exception, match="disallowed|refused"):
            fetch(url)
    ok = fetch("data:text/plain;base64,aGk=")
    assert ok is not None
    # a paper linking remote and local files still renders, without them
    html = (
        '<link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
        '<img src="file:///etc/hostname"><p>Hello paper</p>'
    )
    pdf = wp.HTML(string=html, base_url=None, url_fetcher=fetch).write_pdf()
    assert "Hello paper" in pdf_text(pdf)


def test_missing_weasyprint_is_a_clear_refusal(monkeypatch) -> None:
    papers._weasyprint.cache_clear()
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as if absent
    try:
        with pytest.raises(QuorumError, match="PDF papers need WeasyPrint") as exc:
            papers.render_pdf("bids", {})
        assert exc.value.http_status == 503
    finally:
        monkeypatch.undo()
        papers._weasyprint.cache_clear()


def test_cli_paper_format_pdf(board, tmp_path: Path) -> None:
    url, _ = board
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("QUORUM_DATABASE_URL", None)
    cli = [sys.executable, "-m", "engine.entry.cli", "--db", url, "paper"]
    out = tmp_path / "bids.pdf"
    done = subprocess.run(
        cli + ["bids", "R1", "--format", "pdf", "--out", str(out)],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF-")
    assert "Shared ICT" in pdf_text(out.read_bytes())
    to_stdout = subprocess.run(
        cli + ["minutes", "BOARD-APR", "--format", "pdf"], capture_output=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith(b"%PDF-")
