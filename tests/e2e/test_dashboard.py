"""The dashboard in a real browser against the real `forebay` process.

One gateway and one browser serve the whole module; each test opens its own browser
context (its own cookies) and keeps to its own endpoints, so the tests stand alone.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.browser import VIEWPORT, chromium, screenshot, watch_console
from support.gateway import ADMIN_TOKEN, Gateway, Response, assert_problem, wait_until
from support.origin import LoopbackOrigin

SPEC = """openapi: 3.0.3
info: {title: shop, version: "1"}
paths:
  /rec/orders:
    get: {summary: List orders, responses: {"200": {description: ok}}}
    post: {summary: Place an order, responses: {"202": {description: ok}}}
  /rec/orders/{id}:
    get: {summary: One order, responses: {"200": {description: ok}}}
    put: {summary: Replace an order, responses: {"200": {description: ok}}}
  /rec/payments:
    post: {summary: Take a payment, responses: {"202": {description: ok}}}
  /rec/items:
    get: {summary: The catalogue, responses: {"200": {description: ok}}}
"""

# Deliveries and the charts' samples take a second or two on a busy machine.
expect.set_options(timeout=15_000)

UPLOAD = {
    "openapi": "3.1.0",
    "info": {"title": "extra", "version": "1"},
    "paths": {"/rec/refunds": {"post": {"responses": {"202": {"description": "ok"}}}}},
}


@pytest.fixture(scope="module")
def gw(
    module_gateway_factory: Callable[..., Gateway], tmp_path_factory: pytest.TempPathFactory
) -> Gateway:
    spec = tmp_path_factory.mktemp("spec") / "shop.yaml"
    spec.write_text(SPEC)
    return module_gateway_factory("--import", str(spec))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, gw: Gateway) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(
        viewport=VIEWPORT,  # type: ignore[arg-type]
        base_url=f"http://127.0.0.1:{gw.admin_port}",
    )
    context.set_default_timeout(15_000)
    p = context.new_page()
    errors: list[str] = []
    watch_console(p, errors)
    yield p
    context.close()
    assert not errors, errors


def log_in(page: Page, target: str = "/endpoints") -> None:
    page.goto(target)
    expect(page).to_have_url(f"/login?next={target}")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(target)
    # The page's script (a module, so deferred) has set up its forms by then; a form
    # used before would be submitted the browser's way, reloading the page.
    page.wait_for_load_state("domcontentloaded")


def endpoint_id(gw: Gateway, method: str, path: str) -> str:
    rows = gw.admin("GET", f"/api/endpoints?method={method}").json()
    found: str = next(r["id"] for r in rows if r["path"] == path)
    return found


def test_login_filter_toggle_edit_import(page: Page, gw: Gateway, tmp_path: Path) -> None:
    page.goto("/endpoints")
    expect(page).to_have_url("/login?next=/endpoints")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("not the admin token")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url("/endpoints")
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
        "forebay_session",
        True,
        "Strict",
    )
    # A change made with the cookie but without the page's CSRF token is refused.
    forged = page.evaluate(
        """async () => (await fetch('/api/endpoints', {method: 'PATCH',
             headers: {'content-type': 'application/json'}, body: '{"managed": true}'})).status"""
    )
    assert forged == 403
    rows = page.locator("#endpoints tbody tr")
    expect(rows).to_have_count(6)

    # The seed workflow: filter to POST, switch them all to managed and async.
    page.select_option("select[name=method]", "POST")
    expect(rows).to_have_count(2)
    expect(page).to_have_url("/endpoints?method=POST")
    page.click("[data-bulk=managed-async]")
    expect(page.locator("#flash")).to_contain_text("2 endpoints changed")
    expect(page.locator("#endpoints input[data-field=async]:checked")).to_have_count(2)
    async_rows = gw.admin("GET", "/api/endpoints?state=async").json()
    assert sorted(r["path"] for r in async_rows) == ["/rec/orders", "/rec/payments"]
    screenshot(page, "endpoints", tmp_path)

    # One row's toggle, then its edit form: cache with a TTL, retry and ordering.
    page.select_option("select[name=method]", "GET")
    page.fill("input[name=q]", "items")
    expect(rows).to_have_count(1)
    page.get_by_label("cache GET /rec/items").check()
    expect(page.locator("#endpoints tbody tr td").nth(5)).to_contain_text("ttl 60s")
    page.get_by_role("button", name="Edit").click()
    page.fill("#edit-form input[name=ttl]", "15")
    page.fill("#edit-form input[name=max_attempts]", "3")
    page.select_option("#edit-form select[name=ordering]", "none")
    page.click("#edit-save")
    expect(page.locator("#endpoints tbody tr td").nth(5)).to_contain_text("ttl 15s")
    policy = gw.admin("GET", f"/api/endpoints/{endpoint_id(gw, 'GET', '/rec/items')}").json()
    assert policy["policy"]["cache"]["ttl"] == 15 and policy["policy"]["max_attempts"] == 3
    assert policy["policy"]["ordering"] == "none" and policy["policy"]["managed"] is True

    # Import by upload: the new endpoint shows up in the table.
    upload = tmp_path / "extra.json"
    upload.write_text(json.dumps(UPLOAD))
    page.fill("input[name=q]", "")
    page.select_option("select[name=method]", "")
    page.set_input_files("#import-file", str(upload))
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-result")).to_contain_text("added: POST /rec/refunds")
    expect(rows).to_have_count(7)
    assert gw.admin("GET", "/api/endpoints?q=refunds").json()[0]["sources"] == ["upload:extra.json"]


def test_request_appears_completes_and_dead_one_replays(
    page: Page, gw: Gateway, module_origin: LoopbackOrigin, tmp_path: Path
) -> None:
    for path in ("/rec/orders", "/rec/payments"):
        eid = endpoint_id(gw, "POST", path)
        # One attempt, so an origin failure makes a dead letter at once.
        patch = {"managed": True, "async": True, "max_attempts": 1}
        assert gw.admin("PATCH", f"/api/endpoints/{eid}", patch).status == 200
    log_in(page, "/requests")

    accepted = gw.request(
        "POST", "/rec/orders", b'{"item": 1}', {"content-type": "application/json"}
    )
    assert accepted.status == 202, accepted.body
    rid = accepted.json()["id"]
    row = page.locator(f"#requests tr[data-id='{rid}']")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-state", "succeeded")
    page.fill("input[name=id]", rid)
    page.press("input[name=id]", "Enter")
    expect(page).to_have_url(f"/requests/{rid}")
    expect(page.locator("#request")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#attempts tbody tr")).to_have_count(1)
    expect(page.locator("#response-status")).to_have_text("200")

    # A dead one, replayed from its page once the origin is well again.
    module_origin.set_reply("/rec/payments", 500)
    dead = [
        gw.request("POST", "/rec/payments", b"{}", {"content-type": "application/json"})
        for _ in range(3)
    ]
    ids = [d.json()["id"] for d in dead]
    for i in ids:
        gw.wait_status(i, ("dead",))
    module_origin.set_reply("/rec/payments", None)
    page.goto(f"/requests/{ids[0]}")
    expect(page.locator("#request")).to_have_attribute("data-state", "dead")
    screenshot(page, "request", tmp_path)
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#request")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#attempts tbody tr")).to_have_count(2)

    # The dead-letter view: the rest, all at once.
    page.goto("/requests?state=dead")
    dead_rows = page.locator("#requests tbody tr")
    expect(dead_rows).to_have_count(2)
    screenshot(page, "dead-letters", tmp_path)
    page.click("#replay-all")
    expect(page.locator("#flash")).to_contain_text("2 requests queued again")
    for i in ids[1:]:
        gw.wait_status(i, ("succeeded",))
    expect(dead_rows).to_have_count(0)
    page.goto("/requests")
    expect(page.locator(f"#requests tr[data-id='{ids[2]}']")).to_have_attribute(
        "data-state", "succeeded"
    )
    screenshot(page, "requests", tmp_path)


def test_live_charts_move(page: Page, gw: Gateway, tmp_path: Path) -> None:
    eid = endpoint_id(gw, "POST", "/rec/orders")
    gw.admin("PATCH", f"/api/endpoints/{eid}", {"managed": True, "async": True})
    log_in(page, "/live")
    flow = page.locator("#chart-flow")
    expect(flow).to_have_attribute("data-points", re.compile(r"[1-9]\d*"))  # samples arrive

    def moving() -> bool:
        # Traffic until a few seconds of it are on the charts: the accepted and delivered
        # lines leave zero and the latency chart gets values.
        for _ in range(5):
            assert gw.request("POST", "/rec/orders", b"{}").status == 202
            assert gw.request("GET", "/rec/items").status == 200
        return bool(
            page.evaluate(
                """() => {
                  const d = (id) => document.getElementById(id).dataset;
                  return Number(d('chart-flow').points) >= 6 && Number(d('chart-flow').peak) > 0
                    && Number(d('chart-latency').peak) > 0;
                }"""
            )
        )

    wait_until(moving, timeout=30, what="the live charts to move")
    expect(flow.locator("[data-key=accepted_per_s]")).not_to_have_attribute("data-value", "")
    screenshot(page, "live", tmp_path)


def test_errors_and_consumers_pages(page: Page, gw: Gateway, tmp_path: Path) -> None:
    assert gw.request("GET", "/status/503").status == 503
    log_in(page, "/errors")
    group = page.locator(".error-group[data-endpoint=unmatched]")
    expect(group).to_be_visible()
    expect(group.locator(".sample").first).to_contain_text("503")
    screenshot(page, "errors", tmp_path)

    page.goto("/consumers")
    page.fill("#create-form input[name=name]", "acme")
    page.fill("#create-form input[name=rate_limit]", "100/s")
    page.click("#create-form button[type=submit]")
    key = page.locator("#issued-key")
    expect(key).to_be_visible()
    consumer = page.locator(".consumer[data-name=acme]")
    expect(consumer.locator("tbody tr")).to_have_count(1)
    consumer.get_by_role("button", name="New key").click()
    expect(consumer.locator("tbody tr")).to_have_count(2)
    screenshot(page, "consumers", tmp_path)
    consumer.get_by_role("button", name="Revoke").first.click()
    expect(consumer.locator("tr.revoked")).to_have_count(1)
    keys = gw.admin("GET", "/api/consumers/acme").json()["keys"]
    assert sorted(k["revoked_at"] is None for k in keys) == [False, True]


def test_consumer_usage_shows_requests_and_refusals(page: Page, gw: Gateway) -> None:
    log_in(page, "/consumers")
    page.fill("#create-form input[name=name]", "metered")
    page.fill("#create-form input[name=rate_limit]", "2/m")
    page.fill("#create-form input[name=endpoints]", "GET /rec/items")
    page.click("#create-form button[type=submit]")
    key = page.locator("#issued-key").inner_text()
    minute = page.locator(".consumer[data-name=metered] .usage [data-window=minute]")
    expect(minute).to_have_attribute("data-requests", "0")

    auth = {"Authorization": f"Bearer {key}"}
    statuses = [gw.request("GET", "/rec/items", headers=auth).status for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert gw.request("GET", "/rec/orders", headers=auth).status == 403
    # The page refreshes the usage lines by itself.
    expect(minute).to_have_attribute("data-requests", "5")
    expect(minute).to_have_attribute("data-rate-limited", "2")
    expect(minute).to_have_attribute("data-forbidden", "1")
    expect(minute).to_have_text("5 requests, 2 rate limited (429), 1 forbidden (403)")
    hour = page.locator(".consumer[data-name=metered] .usage [data-window=hour]")
    expect(hour).to_have_attribute("data-requests", "5")
    usage = gw.admin("GET", "/api/consumers/metered").json()["usage"]
    assert usage["last_hour"] == {"requests": 5, "rate_limited": 2, "forbidden": 1}


def test_endpoint_rate_limits_from_the_edit_dialog(page: Page, gw: Gateway) -> None:
    log_in(page)
    page.select_option("select[name=method]", "PUT")
    rows = page.locator("#endpoints tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Edit").click()
    # A rate the gateway would not understand is not sent.
    page.fill("#edit-form input[name=rate_limit]", "lots")
    page.click("#edit-save")
    expect(page.locator("#edit")).to_have_attribute("open", "")
    page.fill("#edit-form input[name=rate_limit]", "1/m")
    page.fill("#edit-form input[name=consumer_rate_limit]", "20/m burst 40")
    page.click("#edit-save")
    settings = rows.locator("td").nth(5)
    expect(settings).to_contain_text("limit 1/m")
    expect(settings).to_contain_text("per consumer 20/m burst 40")
    policy = gw.admin("GET", f"/api/endpoints/{endpoint_id(gw, 'PUT', '/rec/orders/{id}')}")
    assert policy.json()["policy"]["rate_limit"] == "1/m"
    assert policy.json()["policy"]["consumer_rate_limit"] == "20/m burst 40"
    # The limit is in force on the data plane.
    statuses = [gw.request("PUT", "/rec/orders/7", b"{}").status for _ in range(2)]
    assert statuses == [200, 429]

    # Emptied fields remove the limits; the dialog shows what is set.
    page.get_by_role("button", name="Edit").click()
    expect(page.locator("#edit-form input[name=rate_limit]")).to_have_value("1/m")
    page.fill("#edit-form input[name=rate_limit]", "")
    page.fill("#edit-form input[name=consumer_rate_limit]", "")
    page.click("#edit-save")
    expect(settings).not_to_contain_text("limit")
    policy = gw.admin("GET", f"/api/endpoints/{endpoint_id(gw, 'PUT', '/rec/orders/{id}')}")
    assert policy.json()["policy"]["rate_limit"] is None
    assert policy.json()["policy"]["consumer_rate_limit"] is None


def cache_status(gw: Gateway, path: str) -> str:
    return str(gw.request("GET", path).headers.get("cache-status"))


def test_cache_purge_by_path_pattern_endpoint_and_everything(
    page: Page, gw: Gateway, module_origin: LoopbackOrigin
) -> None:
    template = "/rec/orders/{id}"
    eid = endpoint_id(gw, "GET", template)
    patched = gw.admin("PATCH", f"/api/endpoints/{eid}", {"managed": True, "cache": {"ttl": 300}})
    assert patched.status == 200, patched.body
    one, two, three = (f"/rec/orders/purge-{n}" for n in (1, 2, 3))

    def origin_reads(path: str) -> int:
        return sum(d.method == "GET" for d in module_origin.recorded(path))

    def warm(*paths: str) -> None:
        for path in paths:
            gw.request("GET", path)
            assert cache_status(gw, path) == "forebay; hit", path

    warm(one, two)
    assert origin_reads(one) == 1
    log_in(page)
    # The table is filled by the page's script, after it has set up the forms: before
    # that, a click on Purge would submit the form the browser's way (reload the page).
    expect(page.locator("#endpoints tbody tr").first).to_be_visible()
    form = page.locator("#purge-form")
    result = page.locator("#purge-result")

    # By path: that answer goes, the next read reaches the origin; the other stays.
    form.get_by_label("Purge by").select_option("path")
    form.get_by_label("Path", exact=True).fill(one)
    form.get_by_role("button", name="Purge", exact=True).click()
    expect(result).to_have_text("Purged 1 stored answer")
    assert "miss" in cache_status(gw, one)
    assert origin_reads(one) == 2
    assert cache_status(gw, two) == "forebay; hit"

    # The problem's detail is shown when the API refuses.
    form.get_by_label("Path", exact=True).fill("rec/orders/x")
    form.get_by_role("button", name="Purge", exact=True).click()
    expect(result).to_contain_text("is not a path")
    expect(result).to_have_class("error")

    # By pattern: a template's parameter stands for one segment.
    warm(three)
    form.get_by_label("Purge by").select_option("pattern")
    form.get_by_label("Pattern", exact=True).fill(template)
    form.get_by_role("button", name="Purge", exact=True).click()
    expect(result).to_have_text("Purged 3 stored answers")
    for path in (one, two, three):
        assert "miss" in cache_status(gw, path), path

    # From the endpoint's row: every answer of the endpoint.
    page.select_option("select[name=method]", "GET")
    page.fill("input[name=q]", "orders/")
    expect(page.locator("#endpoints tbody tr")).to_have_count(1)
    page.get_by_role("button", name=f"purge cache of GET {template}").click()
    expect(page.locator("#flash")).to_have_text(f"Purged 3 stored answers of GET {template}")
    assert "miss" in cache_status(gw, two)

    # Everything, once confirmed: dismissing the question purges nothing.
    entries = gw.admin("GET", "/api/cache").json()["entries"]
    assert entries >= 1
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Purge everything").click()
    expect(result).to_have_text("Purged 3 stored answers")  # still the pattern's
    assert cache_status(gw, two) == "forebay; hit"
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Purge everything").click()
    expect(result).to_have_text(f"Purged {entries} stored answer{'s' if entries != 1 else ''}")
    assert gw.admin("GET", "/api/cache").json()["entries"] == 0
    reads = origin_reads(two)
    assert "miss" in cache_status(gw, two)
    assert origin_reads(two) == reads + 1


def login_from(gw: Gateway, address: str, token: str) -> Response:
    """`POST /api/session` from a client address of our choosing on the loopback net."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", gw.admin_port, timeout=30, source_address=(address, 0)
    )
    try:
        body = json.dumps({"token": token})
        conn.request("POST", "/api/session", body, {"content-type": "application/json"})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def test_wrong_tokens_are_limited_per_address(gw: Gateway) -> None:
    # Another loopback address than the other tests' browser, which is not held up.
    guesser = "127.0.0.2"
    assert [login_from(gw, guesser, "guess").status for _ in range(5)] == [401] * 5
    refused = login_from(gw, guesser, "guess")
    body = assert_problem(refused, 429, "rate-limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 12, refused.headers
    assert guesser in body["detail"]
    # Even the right token waits, so a guess that happens to be right is no signal.
    assert login_from(gw, guesser, ADMIN_TOKEN).status == 429
    assert login_from(gw, "127.0.0.1", ADMIN_TOKEN).status == 200
