"""The dashboard in a real browser: Debian's Chromium, headless, driven by Selenium through
Debian's chromedriver (no driver is downloaded). It opens Horizon's login page, types the
user's name, password and domain as a person would, submits the form, opens the project's
instances page, waits for the instance's name on it, and saves a screenshot.

    OS_PASSWORD=... python tests/e2e/browser.py --url http://10.0.0.11/dashboard/ \\
        --user demo --instance oslab-verify-vm --screenshot out.png

The password comes from the environment (``. "$(oslab openrc demo)"``), never the command
line. Exit 0 when the name is on the page; else 1, with what the page showed. The screenshot
is saved either way. scripts/e2e.sh runs it inside the test network namespace.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser(page_timeout: float) -> WebDriver:
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(page_timeout)
    return driver


def log_in(driver: WebDriver, url: str, user: str, password: str, wait: float) -> None:
    driver.get(url + "auth/login/")
    driver.find_element(By.ID, "id_username").send_keys(user)
    driver.find_element(By.ID, "id_password").send_keys(password)
    domains = driver.find_elements(By.ID, "id_domain")
    if domains and domains[0].is_displayed():
        domains[0].clear()
        domains[0].send_keys("Default")
    driver.find_element(By.ID, "loginBtn").click()
    WebDriverWait(driver, wait).until(lambda d: "/auth/login" not in d.current_url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the dashboard, ending in /")
    ap.add_argument("--user", default="demo")
    ap.add_argument("--instance", required=True, help="the name the instances page must show")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--wait", type=float, default=600.0,
                    help="seconds for each page (Horizon under TCG is slow)")
    args = ap.parse_args(argv)
    password = os.environ.get("OS_PASSWORD", "")
    if not password:
        print("browser: no OS_PASSWORD in the environment (. the user's openrc first)",
              file=sys.stderr)
        return 2
    start = time.monotonic()
    driver = browser(args.wait)
    try:
        try:
            log_in(driver, args.url, args.user, password, args.wait)
            print(f"browser: logged in as {args.user}: {driver.current_url} "
                  f"({time.monotonic() - start:.0f}s)")
            driver.get(args.url + "project/instances/")
            WebDriverWait(driver, args.wait).until(
                lambda d: args.instance in d.find_element(By.TAG_NAME, "body").text)
        except (TimeoutException, WebDriverException) as exc:
            body = driver.find_element(By.TAG_NAME, "body").text if driver.page_source else ""
            print(f"browser: FAIL at {driver.current_url}: {type(exc).__name__}: "
                  f"{(exc.msg or '').strip()}\n--- the page said:\n{body[:2000]}",
                  file=sys.stderr)
            return 1
        finally:
            driver.save_screenshot(args.screenshot)
            print(f"browser: screenshot {args.screenshot}")
        print(f"browser: the instances page shows {args.instance} "
              f"({time.monotonic() - start:.0f}s)")
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
