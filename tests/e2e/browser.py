"""Headless Debian Chromium for the web tests, driven by Selenium through chromedriver.

:func:`open_browser` starts Chromium with the flags that work on our machines (no sandbox as
root, no background networking, a fresh profile) and limits the network to loopback: every
host but 127.0.0.1 resolves to nothing (``--host-resolver-rules``), so a request anywhere else
fails at once. Every request the page tries (sent or not) is recorded from the DevTools
performance log, so a test can assert that none was for anywhere but 127.0.0.1; console
messages come from the browser log. :meth:`Browser.axe` runs the vendored axe-core.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
LOCAL_SCHEMES = ("data", "blob", "about", "chrome", "devtools", "chrome-extension")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    # Nothing but loopback resolves: a request to any other host fails at once.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@dataclass
class Browser:
    """A page-driving session with its request log."""

    driver: WebDriver
    requests: list[str] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)

    def get(self, url: str) -> None:
        """Open ``url``; the console log starts anew (the request log goes on)."""
        self.drain()
        self.console.clear()
        self.driver.get(url)

    def drain(self) -> None:
        """Move new performance and browser log entries into :attr:`requests` / :attr:`console`."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        self.console.extend(self.driver.get_log("browser"))

    def foreign_requests(self) -> list[str]:
        """Every request so far that went anywhere but 127.0.0.1 (or a local scheme)."""
        self.drain()
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in LOCAL_SCHEMES and urlsplit(url).hostname != "127.0.0.1"
        ]

    def console_errors(self) -> list[dict[str, Any]]:
        """Console messages of level SEVERE so far."""
        self.drain()
        return [m for m in self.console if m["level"] == "SEVERE"]

    def axe(self) -> list[dict[str, Any]]:
        """The axe-core violations of the current page (WCAG 2.x A and AA rules)."""
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
            ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', "
            "impact: 'critical', description: String(e), nodes: []}]));"
        )
        return list(result)

    def screenshot(self, path: Path) -> None:
        """A PNG of the viewport."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))


def serious(violations: list[dict[str, Any]]) -> list[str]:
    """The serious and critical violations, one readable line each."""
    return [
        f"{v['id']} ({v['impact']}): {v['description']} — "
        + "; ".join(n.get("target", [""])[0] if n.get("target") else "" for n in v["nodes"][:5])
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]


@contextmanager
def open_browser(lang: str = "en-GB") -> Iterator[Browser]:
    """A fresh headless Chromium whose network reaches 127.0.0.1 only."""
    profile = tempfile.mkdtemp(prefix="up-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--lang={lang}")
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_script_timeout(60)
        yield Browser(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
