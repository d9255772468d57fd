"""Charts for the programme dashboard: pygal → SVG text, one consistent style.

    pots_chart(pots) -> str            allocated / committed / paid / available per pot
    savings_chart(rows) -> str         savings delivered vs anticipated per partnership
    late_returns_chart(rows) -> str    late returns per partnership

Each returns a standalone ``<svg>`` element (no XML declaration) to put
inline in a page: ``{{ chart | safe }}`` — the text in it (pot and partnership
names) is escaped by pygal. No JavaScript is needed or referenced (pygal's
tooltip script is switched off), so the charts work with scripts disabled and
under a strict Content-Security-Policy; each value is also in the SVG as text
(``<desc class="value">``) and every chart has a ``<title>``. pygal's inline
``<script>`` (its config as JSON) is removed. The SVG carries its own
``<style>`` scoped to its id: a page with a Content-Security-Policy needs
``style-src 'unsafe-inline'`` for inline charts, or serves the SVG as an
image (``<img src="/dashboard/pots.svg">``, ``image/svg+xml``). Show the same
figures in a table beside it: a chart is a picture of the table, not a
replacement for it.

Inputs are the dashboard's rows (``engine.read.dashboard.programme_dashboard``,
or ``engine.read.views.pots`` for pots): amounts in pence, drawn in pounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pygal
from pygal.style import Style

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif'

# one palette for every chart: money kinds keep their colour from chart to chart
COLOURS = {
    "allocated": "#5c6f82",  # slate
    "committed": "#e0a526",  # amber
    "paid": "#2e7d32",  # green
    "available": "#4fa3d9",  # light blue
    "delivered": "#2e7d32",  # green, as paid
    "anticipated": "#b0bec5",  # grey
    "late": "#c62828",  # red
}


def _style(*kinds: str) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="#222",
        foreground_strong="#111",
        foreground_subtle="#666",
        opacity=".9",
        opacity_hover="1",
        colors=tuple(COLOURS[k] for k in kinds),
        font_family=FONT,
        title_font_size=16,
        legend_font_size=13,
        label_font_size=12,
        major_label_font_size=12,
        value_font_size=11,
        tooltip_font_size=12,
        no_data_font_size=18,
        guide_stroke_color="#ddd",
        major_guide_stroke_color="#bbb",
    )


def _pounds(pence: Any) -> float:
    return round(int(pence or 0) / 100, 2)


def gbp(value: float | None) -> str:
    """£1,234 (whole pounds: a chart label, not a ledger)."""
    if value is None:
        return ""
    return f"-£{-value:,.0f}" if value < 0 else f"£{value:,.0f}"


def _config(**kw: Any) -> dict:
    base = {
        "js": [],  # no tooltip script: nothing is fetched, nothing runs
        "disable_xml_declaration": True,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "show_y_guides": True,
        "print_values": False,
        "truncate_label": -1,  # never cut a pot or partnership name
        "truncate_legend": -1,
        "margin": 16,
    }
    base.update(kw)
    return base


def _render(chart: Any) -> str:
    """The SVG without pygal's inline config ``<script>`` (it embeds the labels
    as JSON, unescaped for HTML, and runs nothing useful without its tooltip
    script) and without its comments."""
    import xml.etree.ElementTree as ET

    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            tag = child.tag
            if tag is ET.Comment or (isinstance(tag, str) and tag.rsplit("}", 1)[-1] == "script"):
                parent.remove(child)
    if not isinstance(tree, ET.Element):  # pygal on lxml
        from lxml import etree as lxml_etree

        return lxml_etree.tostring(tree, encoding="unicode")
    return ET.tostring(tree, encoding="unicode")


def pots_chart(pots: Iterable[Mapping[str, Any]], *, title: str = "Pots") -> str:
    """Grouped bars per pot: allocated, committed, paid, available (pounds)."""
    pots = list(pots)
    chart = pygal.Bar(
        **_config(
            title=title,
            width=max(640, 110 * len(pots) + 160),
            height=380,
            x_label_rotation=20 if len(pots) > 5 else 0,
            value_formatter=gbp,
            no_data_text="No pots",
        ),
        style=_style("allocated", "committed", "paid", "available"),
    )
    chart.x_labels = [p["name"] for p in pots]
    for label, key in (
        ("Allocated", "allocated_pence"),
        ("Committed", "committed_pence"),
        ("Paid", "paid_pence"),
        ("Available", "available_pence"),
    ):
        chart.add(label, [_pounds(p.get(key)) for p in pots])
    return _render(chart)


def _horizontal(n: int) -> dict:
    return {"width": 760, "height": max(220, 38 * n + 140)}


def savings_chart(
    rows: Iterable[Mapping[str, Any]], *, title: str = "Savings delivered vs anticipated"
) -> str:
    """Horizontal bars per partnership: savings delivered and anticipated
    (``savings_delivered_pence``, ``savings_anticipated_pence``; pounds).
    Partnerships with neither are left out."""
    rows = [
        r
        for r in rows
        if (r.get("savings_delivered_pence") or 0) or (r.get("savings_anticipated_pence") or 0)
    ]
    chart = pygal.HorizontalBar(
        **_config(
            title=title,
            value_formatter=gbp,
            no_data_text="No savings returns accepted yet",
            **_horizontal(len(rows)),
        ),
        style=_style("delivered", "anticipated"),
    )
    chart.x_labels = [r["partnership"] for r in rows]
    chart.add("Delivered", [_pounds(r.get("savings_delivered_pence")) for r in rows])
    chart.add("Anticipated", [_pounds(r.get("savings_anticipated_pence")) for r in rows])
    return _render(chart)


def late_returns_chart(
    rows: Iterable[Mapping[str, Any]], *, title: str = "Late returns by partnership"
) -> str:
    """Horizontal bars: late returns per partnership (``late_returns``, or
    ``late`` as ``engine.read.returns.late_returns`` gives it). Partnerships
    with none are left out."""

    def late(r: Mapping[str, Any]) -> int:
        return int(r.get("late_returns", r.get("late", 0)) or 0)

    rows = [r for r in rows if late(r)]
    chart = pygal.HorizontalBar(
        **_config(
            title=title,
            show_legend=False,
            value_formatter=lambda v: "" if v is None else f"{v:,.0f}",
            no_data_text="No late returns",
            **_horizontal(len(rows)),
        ),
        style=_style("late"),
    )
    chart.x_labels = [r["partnership"] for r in rows]
    chart.add("Late returns", [late(r) for r in rows])
    return _render(chart)
