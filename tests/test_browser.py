"""The report and the app in a real browser (headless Chromium): no console error, no missing plot."""

import socket
import threading
import time

import browser as B
import pytest

from hwlat.archs import get_arch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(B.available() is not None, reason=f"no headless browser: {B.available()}"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.timing import TimingConfig

    db = tmp_path_factory.mktemp("browser") / "lat.db"
    cfg = TimingConfig(max_seconds=0.3, target=0.05)
    archs = [get_arch("mobilenetv3_small_100", resolution=r) for r in (96, 128)]
    profile(archs, "model", db, "litert", config=cfg, progress=False)
    profile(archs[:1], "block", db, "litert", config=cfg, progress=False)
    return db


@pytest.fixture(scope="module")
def drv():
    d = B.driver()
    yield d
    d.quit()


def test_report_loads_without_errors(store, drv, tmp_path):
    from hwlat.dashboards.report import build_report

    html = build_report(store, runs_dir=tmp_path / "no-runs", out=tmp_path / "report.html")
    expected = html.read_text().count("Plotly.newPlot")
    r = B.check_page(drv, html.resolve().as_uri(), min_plots=expected)
    assert r.errors == []
    assert r.plots == expected >= 6
    # the Pixel-1 toggle works in the browser: clicking it shows more traces
    before = drv.execute_script(
        "return document.querySelectorAll('.js-plotly-plot')[0]"
        ".querySelectorAll('.scatterlayer .trace').length"
    )
    drv.find_elements("xpath", "//*[contains(@class,'updatemenu-button')][.//*[contains(text(),'Pixel-1')]]")[
        0
    ].click()
    time.sleep(0.5)
    after = drv.execute_script(
        "return document.querySelectorAll('.js-plotly-plot')[0]"
        ".querySelectorAll('.scatterlayer .trace').length"
    )
    assert after > before
    assert B.console_errors(drv) == []
    png = B.screenshot(html, tmp_path / "report.png")
    assert png.stat().st_size > 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_loads_and_click_shows_blocks(store, drv):
    pytest.importorskip("dash")
    from selenium.webdriver.common.action_chains import ActionChains
    from werkzeug.serving import make_server

    from hwlat.dashboards.app import make_app

    app = make_app(store)
    port = _free_port()
    srv = make_server("127.0.0.1", port, app.server, threaded=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        r = B.check_page(drv, f"http://127.0.0.1:{port}/", min_plots=2, timeout_s=60)
        assert r.plots == 2, "the budget plot and the block plot"
        assert r.errors == []
        best = drv.find_element("id", "best").text
        assert "best under" in best or "no published network" in best
        # click the first point of the budget plot: the block plot shows that network
        point = drv.find_elements("css selector", "#pareto .scatterlayer .trace .points path")[0]
        ActionChains(drv).move_to_element(point).pause(0.3).click().perform()  # plotly's drag layer is on top
        end = time.monotonic() + 20
        title = ""
        while time.monotonic() < end and "mobilenetv3" not in title:
            time.sleep(0.25)
            title = " ".join(e.text for e in drv.find_elements("css selector", "#blocks .gtitle"))
        assert "mobilenetv3_small_100" in title
        assert B.console_errors(drv) == []
    finally:
        srv.shutdown()
        th.join(5)
