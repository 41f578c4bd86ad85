"""The admin UI in real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
real server on loopback: the login form without the token, the page with it, every chart drawn,
the figures equal to GET /v1/blendcache/stats after a known sequence, no script error (a CSP
violation is one). ``BLENDCACHE_SAVE_SCREENSHOT=1`` saves the screenshot as docs/admin.png."""

import os
from pathlib import Path

import httpx
import pytest

from blendcache.config import BlendConfig

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CHARTS = ("chart-hit-rate", "chart-outcomes", "chart-tier-hits", "chart-tier-bytes",
          "chart-ttft-saved", "chart-ttft", "chart-top-chunks")
DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "admin.png"


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (the dev extra)")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian's chromium; .ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def served(tiny_engine, embedder, admin_settings, known_sequence):
    """A real server after the known sequence: (base URL, app, its outcomes)."""
    from blendcache.middleware.app import create_app
    from blendcache.middleware.server import serving

    # NOTE: chunks fused from the first request, so the outcomes do not depend on when a cold
    # request's chunks are stored after its response.
    app = create_app(admin_settings(blend=BlendConfig(max_missing_share=1.0)),
                     engine=tiny_engine, embedder=embedder)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        outcomes = known_sequence(http)
        assert app.state.records.flush()
        yield url, app, outcomes


def watch_errors(page) -> list[str]:
    """Script errors and console errors (a CSP violation is one), but the wrong login's 401."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and not
            msg.text.endswith("status of 401 (Unauthorized)") else None)
    return errors


def test_the_admin_page_in_chromium(browser, served, admin_token, tmp_path):
    url, app, outcomes = served
    assert sorted(outcomes) == ["blend", "miss", "miss", "miss", "semantic-hit", "semantic-hit"]
    stats = httpx.get(f"{url}/v1/blendcache/stats",
                      headers={"authorization": f"Bearer {admin_token}"}).json()

    # Without the token: the login form, no data.
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = watch_errors(page)
    page.goto(f"{url}/admin")
    assert page.url == f"{url}/admin/login"
    assert page.locator("svg.chart").count() == 0 and page.locator("#login").is_visible()
    page.fill("#token", "not the token")
    page.click("#login button[type=submit]")
    assert page.url == f"{url}/admin/login" and "Wrong admin token" in page.inner_text(".message")

    # With it, through the form: the page, refreshed by its script.
    page.fill("#token", admin_token)
    page.click("#login button[type=submit]")
    assert page.url == f"{url}/admin"
    page.wait_for_selector("body[data-refreshed]", timeout=10_000)
    for chart in CHARTS:
        marks = page.locator(f"#{chart} :is(rect, path, circle)").count()
        width, height = page.eval_on_selector(
            f"#{chart}", "svg => { const box = svg.getBBox(); return [box.width, box.height]; }")
        assert marks > 0 and width > 0 and height > 0, chart

    outcome_totals = {o: sum(c.get(o, 0) for c in stats["categories"].values())
                      for o in ("semantic-hit", "blend", "miss")}
    requests = sum(outcome_totals.values())
    tiles = {tile.get_attribute("data-tile"): tile.locator(".value").inner_text()
             for tile in page.locator("[data-tile]").all()}
    assert tiles["requests"] == str(requests) == "6"
    assert {o: int(tiles[o]) for o in outcome_totals} == outcome_totals
    assert tiles["hit-rate"] == f"{outcome_totals['semantic-hit'] / requests * 100:.1f}%"
    shown = {row.locator("td").first.inner_text(): [int(td.inner_text()) for td in
                                                     row.locator("td").all()[1:5]]
             for row in page.locator("#categories tbody tr").all()}
    assert shown == {name: [sum(c.values()), c.get("semantic-hit", 0), c.get("blend", 0),
                            c.get("miss", 0)] for name, c in stats["categories"].items()}
    assert page.locator("#recent tbody tr").count() == 6

    # The recent table's filter.
    page.select_option("#filter-tenant", "globex")
    page.click("#filters button[type=submit]")
    page.wait_for_selector("body[data-refreshed]")
    assert page.locator("#recent tbody tr").count() == 3
    assert set(page.locator("#recent tbody tr td:nth-child(2)").all_inner_texts()) == {"globex"}
    page.goto(f"{url}/admin")
    page.wait_for_selector("body[data-refreshed]")
    page.wait_for_timeout(300)  # let the charts settle for the screenshot
    shot = DOCS_PNG if os.environ.get("BLENDCACHE_SAVE_SCREENSHOT") == "1" else tmp_path / "a.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []

    # The bearer token (a script or a proxy) opens the page without the form.
    context = browser.new_context(extra_http_headers={"authorization": f"Bearer {admin_token}"})
    scripted = context.new_page()
    scripted.goto(f"{url}/admin")
    assert scripted.url == f"{url}/admin"
    scripted.wait_for_selector("body[data-refreshed]", timeout=10_000)
    # ... and refreshes live: one more request shows without a reload.
    httpx.post(f"{url}/v1/chat/completions", timeout=60,
               headers={"authorization": "Bearer sk-acme-0123"},
               json={"model": "default", "max_tokens": 2,
                     "messages": [{"role": "user", "content": "Say hello."}]})
    scripted.wait_for_function(
        "() => document.querySelector('[data-tile=requests] .value').textContent === '7'",
        timeout=15_000)
    assert scripted.locator("#recent tbody tr").count() == 7
    context.close()
