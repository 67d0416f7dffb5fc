"""Headless Chromium checks of the report and the app (used by ``tests/test_browser.py`` and to
make the README screenshot). Needs Debian's ``chromium`` and ``chromium-driver`` and ``selenium``.

    python tests/browser.py report.html docs/report.png
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
)


def available() -> str | None:
    """None when headless Chromium can run here, else the reason it cannot."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    if not (Path(CHROMEDRIVER).exists() or shutil.which("chromedriver")):
        return "chromedriver is missing (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def driver(width: int = 1300, height: int = 1000):
    """A headless Chromium WebDriver that records the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(path), options=opts)


@dataclass
class PageCheck:
    """What a page showed: number of rendered plots and the console's errors."""

    plots: int
    errors: list[str]


def check_page(drv, url: str, min_plots: int = 1, timeout_s: float = 30.0) -> PageCheck:
    """Load ``url``, wait up to ``timeout_s`` for ``min_plots`` rendered ``.js-plotly-plot`` divs."""
    drv.get(url)
    end = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < end:
        n = len(drv.find_elements("css selector", ".js-plotly-plot .main-svg"))
        n = len(drv.find_elements("css selector", ".js-plotly-plot")) if n else 0
        if n >= min_plots:
            break
        time.sleep(0.25)
    return PageCheck(n, console_errors(drv))


def console_errors(drv) -> list[str]:
    """SEVERE browser-console entries since the last call (JavaScript errors, failed loads)."""
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def screenshot(html: str | Path, png: str | Path, width: int = 1300) -> Path:
    """Full-page PNG of a local HTML file (the report), taken in headless Chromium."""
    drv = driver(width, 1000)
    try:
        check_page(drv, Path(html).resolve().as_uri())
        height = drv.execute_script("return document.body.scrollHeight")
        drv.set_window_size(width, min(int(height) + 400, 12000))
        time.sleep(1.0)  # let plotly relayout at the new size
        png = Path(png)
        png.parent.mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(png))
        return png
    finally:
        drv.quit()


if __name__ == "__main__":
    print(screenshot(sys.argv[1], sys.argv[2]))
