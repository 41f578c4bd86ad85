"""The admin UI's routes (middleware/admin/): who gets in (bearer token, the login form's cookie,
never a token in the URL), the page's headers and markup, and the figures of GET /admin/data
against GET /v1/blendcache/stats after a known sequence of requests (tiny model)."""

import re
import time
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from blendcache.config import AuthConfig, TenantConfig
from blendcache.middleware.admin.session import COOKIE, SESSION_S, session_cookie, valid_session
from blendcache.middleware.auth import _digest
from blendcache.storage.requests import RequestRecord

CHARTS = ("chart-hit-rate", "chart-outcomes", "chart-tier-hits", "chart-tier-bytes",
          "chart-ttft-saved", "chart-ttft", "chart-top-chunks")


@pytest.fixture
def admin(make_app, admin_settings):
    with TestClient(make_app(admin_settings())) as c:
        yield c


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def assert_refused(response, code: str = "invalid_admin_token") -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", code)


def test_the_bearer_token_opens_the_page_and_its_data(admin, admin_token):
    page = admin.get("/admin", headers=bearer(admin_token))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert all(f'id="{chart}"' in page.text for chart in CHARTS)
    assert 'action="/admin/logout"' not in page.text  # nothing to sign out of
    data = admin.get("/admin/data", headers=bearer(admin_token))
    assert data.status_code == 200 and data.json()["totals"]["requests"] == 0


def test_without_the_token_the_page_redirects_and_the_data_is_refused(admin, admin_token):
    response = admin.get("/admin", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
    assert_refused(admin.get("/admin/data"))
    assert_refused(admin.get("/admin/data", headers=bearer("wrong")))
    assert_refused(admin.get("/admin/data", headers=bearer("sk-acme-0123")))  # a tenant's key
    assert admin.get("/admin", headers=bearer("wrong"), follow_redirects=False).status_code == 303


@pytest.mark.parametrize("name", ["token", "admin_token", "access_token", "authorization"])
def test_a_token_in_the_url_is_never_accepted(admin, admin_token, name):
    assert admin.get(f"/admin?{name}={admin_token}", follow_redirects=False).status_code == 303
    assert_refused(admin.get(f"/admin/data?{name}={admin_token}"))
    login = admin.post(f"/admin/login?{name}={admin_token}", follow_redirects=False)
    assert login.status_code == 401 and COOKIE not in login.cookies


def test_login_sets_an_httponly_strict_cookie_without_the_token(admin, admin_token):
    form = admin.get("/admin/login")
    assert form.status_code == 200 and 'name="token"' in form.text and 'method="post"' in form.text
    stuffed = "&".join(f"f{i}=x" for i in range(50)) + f"&token={admin_token}"
    assert admin.post("/admin/login", content=stuffed, follow_redirects=False,
                      headers={"content-type": "application/x-www-form-urlencoded"}
                      ).status_code == 401
    wrong = admin.post("/admin/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong admin token" in wrong.text
    assert "set-cookie" not in wrong.headers
    response = admin.post("/admin/login", data={"token": admin_token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/admin")
    cookie = response.headers["set-cookie"]
    assert re.search(r"HttpOnly", cookie, re.I) and re.search(r"SameSite=strict", cookie, re.I)
    assert "Path=/admin" in cookie and f"Max-Age={SESSION_S}" in cookie
    assert admin_token not in cookie and admin.cookies.get(COOKIE)
    page = admin.get("/admin")
    assert page.status_code == 200 and 'action="/admin/logout"' in page.text
    assert admin.get("/admin/data").status_code == 200
    out = admin.post("/admin/logout", follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/admin/login")
    assert not admin.cookies.get(COOKIE)
    assert admin.get("/admin", follow_redirects=False).status_code == 303
    assert_refused(admin.get("/admin/data"))


def test_a_forged_tampered_or_expired_cookie_is_refused(admin, admin_token):
    digest = _digest(admin_token)
    good = session_cookie(digest, now=1000.0)
    assert valid_session(digest, good, now=1000.0 + SESSION_S)
    assert not valid_session(digest, good, now=1001.0 + SESSION_S)  # expired
    expires, mac = good.split(".")
    assert not valid_session(digest, f"{int(expires) + 99}.{mac}", now=1000.0)  # stretched
    assert not valid_session(_digest("another token"), good, now=1000.0)  # the token changed
    for value in ("", "x", admin_token, f"{expires}.{'0' * 64}", "-1.abc"):
        assert not valid_session(digest, value, now=1000.0)
        admin.cookies.set(COOKIE, value, path="/admin")
        assert_refused(admin.get("/admin/data"))


def test_a_keyed_server_without_an_admin_token_lets_no_one_in(make_app, admin_settings):
    with TestClient(make_app(admin_settings(auth=AuthConfig()))) as c:
        assert c.get("/admin", follow_redirects=False).status_code == 303
        assert_refused(c.get("/admin/data"), "admin_token_required")
        assert c.get("/admin/login").status_code == 403
        assert c.post("/admin/login", data={"token": ""}).status_code == 401


def test_an_open_server_without_an_admin_token_is_open_as_require_admin_says(client):
    assert client.get("/admin").status_code == 200
    assert client.get("/admin/data").status_code == 200
    assert client.get("/admin/login", follow_redirects=False).status_code == 303


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.inline, self.handlers, self.styles = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.handlers += [name for name in attrs if name.startswith("on")]
        self.styles += tag == "style" or "style" in attrs
        if tag == "script":
            self.scripts.append(attrs.get("src"))

    def handle_data(self, data):
        if self.lasttag == "script" and data.strip():
            self.inline.append(data)


def test_the_page_runs_no_inline_script_and_says_so(admin, admin_token):
    page = admin.get("/admin", headers=bearer(admin_token))
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    markup = _Markup()
    markup.feed(page.text)
    assert markup.scripts == ["/admin/static/charts.js"] and markup.inline == []
    assert markup.handlers == [] and markup.styles == 0
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    script = admin.get("/admin/static/charts.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "http://" not in script.text.replace("http://www.w3.org/2000/svg", "")
    assert admin.get("/admin/static/admin.css").headers["content-type"].startswith("text/css")
    assert admin.get("/admin/static/..%2Fdata.py").status_code == 404
    assert admin.get("/admin/static/data.py").status_code == 404


def test_the_figures_equal_the_stats_api_after_a_known_sequence(admin, admin_token,
                                                                known_sequence):
    outcomes = known_sequence(admin)
    assert sorted(outcomes) == ["blend", "miss", "miss", "miss", "semantic-hit", "semantic-hit"]
    admin.app.state.records.flush()
    stats = admin.get("/v1/blendcache/stats", headers=bearer(admin_token)).json()
    data = admin.get("/admin/data", headers=bearer(admin_token)).json()

    assert stats["categories"] == {"default": {"miss": 1, "semantic-hit": 1, "blend": 1},
                                   "faq": {"miss": 2, "semantic-hit": 1}}
    assert data["totals"] == {"requests": 6,
                              "outcomes": {"semantic-hit": 2, "blend": 1, "miss": 3},
                              "hit_rate": pytest.approx(2 / 6), "reuse_rate": pytest.approx(0.5)}
    assert {name: c["outcomes"] for name, c in data["categories"].items()} == stats["categories"]
    assert data["categories"]["faq"]["hit_rate"] == pytest.approx(1 / 3)
    assert {t["id"]: t["text"] for t in data["tiles"]} == {
        "requests": "6", "semantic-hit": "2", "blend": "1", "miss": "3", "hit-rate": "33.3%",
        "ttft-saved": data["tiles"][-1]["text"]}
    assert data["chunk_tiers"] == stats["chunk_cache"]["tiers"]
    assert data["chunk_stored"] == stats["chunk_cache"]["stored"]
    assert data["top_chunks"] and data["top_chunks"][0]["hits"] == max(
        c["hits"] for c in data["top_chunks"]) >= 1

    timeline = data["timeline"]
    assert {o: sum(n) for o, n in timeline["outcomes"].items()} == data["totals"]["outcomes"]
    assert set(timeline["hit_rate"]) == {"default", "faq"}

    records = admin.app.state.records.store.recent(10)
    mean = {o: sum(r.ttft_ms for r in records if r.outcome == o)
            / sum(r.outcome == o for r in records) for o in ("miss", "semantic-hit", "blend")}
    saved = sum((mean["miss"] - mean[o]) * n for o, n in (("semantic-hit", 2), ("blend", 1)))
    assert data["ttft"]["miss_mean_ttft_ms"] == pytest.approx(mean["miss"])
    assert data["ttft"]["saved_ms"] == pytest.approx(saved)
    assert data["ttft"]["saved_requests"] == 3
    assert timeline["ttft_saved_ms"][-1] == pytest.approx(saved)

    globex = admin.get("/admin/data?tenant=globex", headers=bearer(admin_token)).json()
    assert [r["tenant"] for r in globex["recent"]] == ["globex"] * 3
    assert globex["filters"]["tenants"] == ["acme", "globex"]
    faq_hits = admin.get("/admin/data", params={"tenant": "globex", "category": "faq"},
                         headers=bearer(admin_token)).json()["recent"]
    assert [r["outcome"] for r in faq_hits] == ["miss", "semantic-hit", "miss"]
    assert faq_hits[1]["similarity"] > 0.9
    page = admin.get("/admin?category=default", headers=bearer(admin_token)).text
    assert page.count('<span class="outcome ') == 3
    for tile in data["tiles"][:5]:
        assert f'<div class="value">{tile["text"]}</div>' in page


def test_records_of_another_window_are_not_charted(make_app, admin_settings, admin_token):
    settings = admin_settings(tenants=(TenantConfig("acme", api_keys=("k",)),))
    with TestClient(make_app(settings)) as c:
        store = c.app.state.records.store
        two_hours_ago = time.time() - 7200  # kept (30 days), outside a 1-hour window
        store.add_many([RequestRecord(created=two_hours_ago, tenant="acme", category="default",
                                      outcome="miss", ttft_ms=5.0, latency_ms=9.0)])
        data = c.get("/admin/data?window_s=3600", headers=bearer(admin_token)).json()
        assert data["timeline"]["starts"] == [] and data["ttft"]["outcomes"] == {}
        assert [r["created"] for r in data["recent"]] == [two_hours_ago]  # all that is kept
        assert len(c.get("/admin/data", headers=bearer(admin_token)).json()["timeline"]["starts"])
        assert c.get("/admin/data?window_s=1", headers=bearer(admin_token)).status_code == 400
