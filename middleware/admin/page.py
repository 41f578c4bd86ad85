"""Server-rendered HTML of the admin UI: ``string.Template`` over the package's templates, every
value through ``html.escape``. The charts are drawn by ``static/charts.js`` from the same data."""

from __future__ import annotations

import datetime as dt
from functools import cache
from html import escape
from pathlib import Path
from string import Template

from blendcache.middleware.admin.data import percent

HERE = Path(__file__).resolve().parent
STATIC = {"charts.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"}
# NOTE: no inline script or style anywhere: everything the page runs comes from /admin/static.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@cache
def _template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text(encoding="utf-8"))


def static_file(name: str) -> tuple[bytes, str] | None:
    """A vendored asset and its content type; None for any other name."""
    if name not in STATIC:
        return None
    return (HERE / "static" / name).read_bytes(), STATIC[name]


def login_page(message: str = "") -> str:
    return _template("login.html").substitute(message=escape(message))


def admin_page(data: dict, *, signed_in: bool) -> str:
    filters = data["filters"]
    days = data["retention_days"]
    logout = ('<form method="post" action="/admin/logout"><button type="submit">Sign out'
              '</button></form>') if signed_in else ""
    return _template("admin.html").substitute(
        generated=_utc(data["generated_at"]),
        retention=f"{days:g} days" if days > 0 else "forever",
        logout=logout,
        tiles="\n".join(_tile(t) for t in data["tiles"]),
        categories="\n".join(_category_row(name, c) for name, c in data["categories"].items()),
        tenant_options=_options(filters["tenants"], filters["tenant"], "every tenant"),
        category_options=_options(filters["categories"], filters["category"], "every category"),
        recent="\n".join(_recent_row(r) for r in data["recent"]),
    )


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _tile(tile: dict) -> str:
    return (f'<div class="tile {escape(tile["id"])}" data-tile="{escape(tile["id"])}">'
            f'<div class="label">{escape(tile["label"])}</div>'
            f'<div class="value">{escape(tile["text"])}</div></div>')


def _category_row(name: str, c: dict) -> str:
    cells = [name, c["requests"], *(c["outcomes"].get(o, 0)
                                    for o in ("semantic-hit", "blend", "miss")),
             percent(c["hit_rate"])]
    return (f'<tr data-category="{escape(name)}">'
            + "".join(f"<td>{escape(str(v))}</td>" for v in cells) + "</tr>")


def _options(names: list[str], chosen: str | None, every: str) -> str:
    out = [f'<option value=""{" selected" if chosen is None else ""}>{escape(every)}</option>']
    for name in sorted(set(names) | ({chosen} if chosen else set())):
        selected = " selected" if name == chosen else ""
        out.append(f'<option value="{escape(name)}"{selected}>{escape(name)}</option>')
    return "".join(out)


def recent_cells(r: dict) -> list[str]:
    """A recent request's cells as text (charts.js builds the same from /admin/data)."""
    similarity = "" if r["similarity"] is None else f'{r["similarity"]:.3f}'
    chunks = f'{r["chunks_reused"]}/{r["chunks_total"]}' if r["chunks_total"] else ""
    return [r["time"], r["tenant"], r["category"], r["outcome"], similarity, chunks,
            str(r["tokens_recomputed"]), f'{r["ttft_ms"]:.1f} ms', f'{r["latency_ms"]:.1f} ms']


def _recent_row(r: dict) -> str:
    cells = [f"<td>{escape(text)}</td>" for text in recent_cells(r)]
    outcome = escape(r["outcome"])
    cells[3] = f'<td><span class="outcome {outcome}">{outcome}</span></td>'
    return "<tr>" + "".join(cells) + "</tr>"
