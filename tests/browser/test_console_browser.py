"""The console in a real browser (Debian's chromium through chromedriver) against a running hub.

The hub (`esb run` on a copy of the project) serves the console on a free loopback port with an
operator and a viewer from ESB_CONSOLE__USERS; CRM orders flow through crm-order-to-iom first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from esb.console.users import hash_password
from esb.runtime.control import RouteControl
from simulators.crm import order_scenario
from tests.conftest import skip_or_fail
from tests.e2e.ops_hub import OpsHub, copy_project, wait_until
from tests.e2e.test_ops_cli import send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROUTE = "crm-order-to-iom"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
USERS = {"olga": ("operator", "olga-pass-1"), "vic": ("viewer", "vic-pass-1")}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsHub]:
    """A running hub serving the console, with 25 CRM orders through it (five dead-lettered)."""
    base = tmp_path_factory.mktemp("console")
    running = OpsHub(copy_project(base / "project"), base / "var")
    running.environ.update(
        ESB_CONSOLE__PORT="0",
        ESB_CONSOLE__USERS=" ".join(
            f"{name}:{role}:{hash_password(password, iterations=20_000)}"
            for name, (role, password) in USERS.items()
        ),
    )
    running.start(base / "hub.log", (ROUTE,))
    try:
        served = wait_until(lambda: (running.data_dir / "console.json").exists())
        assert served, (base / "hub.log").read_text()
        send(running, order_scenario(25, run="browser"))
        yield running
    finally:
        assert running.stop() == 0, (base / "hub.log").read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium driven by Selenium (no browser download: Debian's packages)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        skip_or_fail("chromium and chromium-driver are not installed (scripts/install-test-servers.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def base_url(hub: OpsHub) -> str:
    """The console's URL, from the file the hub writes."""
    url: str = orjson.loads((hub.data_dir / "console.json").read_bytes())["url"]
    return url


def log_in(driver: Any, hub: OpsHub, name: str) -> None:
    """Fill and submit the login form as ``name``."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base_url(hub) + "/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(USERS[name][1])
    driver.find_element(By.ID, "login").click()
    assert wait_until(lambda: driver.find_elements(By.ID, "routes"), timeout=15), driver.page_source


def post_form(driver: Any, action: str, fields: dict[str, str]) -> None:
    """Submit a form the page does not offer (what a forged or hand-made request would send)."""
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "for (const [k, v] of Object.entries(arguments[1])) {"
        "  const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;"
        "  f.appendChild(i); }"
        "document.body.appendChild(f); f.submit();",
        action,
        fields,
    )


def test_find_an_order_by_msisdn(hub: OpsHub, browser: Any) -> None:
    """Logged in, searching an order's MSISDN shows its timeline through the route to IOM."""
    from selenium.webdriver.common.by import By

    planned = next(p for p in order_scenario(25, run="browser")
                   if p.expected == "delivered" and b"MSISDN" in p.message.body_bytes())
    msisdn = hub.journal.find(message_id=planned.message.id)[0].business_keys["msisdn"]
    log_in(browser, hub, "olga")
    box = browser.find_element(By.ID, "search-key")
    box.send_keys(msisdn)
    browser.find_element(By.ID, "search-button").click()
    assert wait_until(lambda: browser.find_elements(By.ID, "timeline"), timeout=15), browser.page_source
    timeline = browser.find_element(By.ID, "timeline").text
    assert planned.message.id in timeline
    assert "iom.orders_in" in timeline
    assert "delivered" in browser.find_element(By.ID, "journeys").text


def test_retry_a_dead_letter_and_see_it_delivered(hub: OpsHub, browser: Any) -> None:
    """A dead letter left while IOM was down is retried from its page, delivered, and audited."""
    from selenium.webdriver.common.by import By

    good = next(p for p in order_scenario(25, run="browser-dlq") if p.expected == "delivered")
    letter = good.message.replace(headers={
        **good.message.headers, "esb-route": ROUTE, "esb-error": "TransportError: iom.orders_in: refused",
        "esb-error-class": "TransportError", "esb-error-reason": "peer-down",
        "esb-failed-at": "2026-12-06T20:00Z",
    })
    endpoint = "dlq.crm-order-to-iom"
    with hub.project.adapter_for(endpoint).sink(hub.project.endpoint(endpoint),
                                                hub.project.context(endpoint)) as sink:
        sink.write(letter)
    log_in(browser, hub, "olga")
    browser.get(f"{base_url(hub)}/dlq/{ROUTE}/{letter.id}")
    assert "peer-down" in browser.find_element(By.TAG_NAME, "main").text
    assert "SiebelMessage" in browser.find_element(By.ID, "dead-letter-body").text
    browser.find_element(By.ID, "retry-one").click()
    assert wait_until(lambda: browser.find_elements(By.ID, "flash"), timeout=30), browser.page_source
    assert f"{letter.id}: sent, delivered" in browser.find_element(By.ID, "flash").text
    assert hub.journal.outcome(ROUTE, letter.id) == "delivered"
    browser.get(base_url(hub) + "/audit")
    audit = browser.find_element(By.ID, "audit").text
    assert "olga" in audit
    assert "dlq.retry" in audit
    assert letter.id in audit


def test_viewer_refused_an_action(hub: OpsHub, browser: Any) -> None:
    """A viewer sees no action buttons, and a suspend they post anyway is refused (403)."""
    from selenium.webdriver.common.by import By

    log_in(browser, hub, "vic")
    assert not browser.find_elements(By.CSS_SELECTOR, "#routes button")
    token = browser.find_element(By.NAME, "csrf_token").get_attribute("value")
    post_form(browser, f"/routes/{ROUTE}/suspend", {"csrf_token": token, "reason": "viewer tries"})
    assert wait_until(lambda: browser.find_elements(By.ID, "error-text"), timeout=15), browser.page_source
    assert "403" in browser.find_element(By.TAG_NAME, "h1").text
    with RouteControl(hub.project.settings.journal.url) as control:
        assert ROUTE not in control.suspended()


def test_post_without_csrf_token_refused(hub: OpsHub, browser: Any) -> None:
    """An operator's POST without the CSRF token (what a forged form sends) is refused (400)."""
    from selenium.webdriver.common.by import By

    log_in(browser, hub, "olga")
    post_form(browser, f"/routes/{ROUTE}/suspend", {"reason": "forged"})
    assert wait_until(lambda: browser.find_elements(By.ID, "error-text"), timeout=15), browser.page_source
    assert "CSRF" in browser.find_element(By.ID, "error-text").text
    with RouteControl(hub.project.settings.journal.url) as control:
        assert ROUTE not in control.suspended()


def test_live_figures_update_without_reload(hub: OpsHub, browser: Any) -> None:
    """The routes page's figures change by themselves when more orders flow (the page polls JSON)."""
    from selenium.webdriver.common.by import By

    log_in(browser, hub, "olga")
    cell = f'tr[data-route="{ROUTE}"] [data-field="received"]'
    before = int(browser.find_element(By.CSS_SELECTOR, cell).text)
    send(hub, order_scenario(5, run="browser-live"))
    assert wait_until(lambda: int(browser.find_element(By.CSS_SELECTOR, cell).text) >= before + 5, timeout=20)
