"""The reports in a real browser: headless Chromium driven by Selenium through chromedriver.

Needs Debian's `chromium` and `chromium-driver` packages and the `test` extra
(`pip install -e '.[test]'`). Nothing is downloaded: the browser and the driver
are the system's. Screenshots (desktop 1280 px, phone 390 px) and a printed PDF
go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from resultfactory import layer_rows, make_class, make_result  # noqa: E402

from grader import cli  # noqa: E402
from grader.results import Outcome, save  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
SET_UP = "install it as the README's set-up does: apt-get install -y chromium chromium-driver"
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
DESKTOP = (1280, 900)
PHONE = (390, 844)


def _binary(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if Path(os.environ[env]).is_file() else None
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def _start(profile: Path):
    """A headless Chromium session, or a sentence saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    browser = _binary("GRADER_CHROMIUM", ("chromium", "chromium-browser"))
    chromedriver = _binary("GRADER_CHROMEDRIVER", ("chromedriver",))
    if not browser:
        return f"Chromium not found (looked for chromium in PATH and /usr/bin): {SET_UP}"
    if not chromedriver:
        return f"chromedriver not found (Debian package chromium-driver): {SET_UP}"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    d.set_page_load_timeout(30)
    return d


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = _start(tmp_path_factory.mktemp("chromium-profile"))
    yield d
    if not isinstance(d, str):
        d.quit()


def need(session):
    """The browser, or a failed test saying what to install (the README's set-up installs it: never a skip)."""
    if isinstance(session, str):
        pytest.fail(session, pytrace=False)
    return session


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("graded")
    alice = make_result("alice", seed=0, stdout="building...\n" + PAYLOAD + "\n" + "x" * 3000)
    mine, reference = layer_rows(diverge_at=0)
    alice.artifacts["layer_tables"]["ResidualBlock"] = {"student": mine, "reference": reference, "first_divergence": 0}
    save(alice, out / "alice")
    for r in make_class(24, seed=1):
        save(r, out / r.student)
    assert cli.main(["report", str(out)]) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    return out


# ---------------------------------------------------------------- helpers


def set_viewport(d, width: int, height: int, mobile: bool = False) -> None:
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def screenshot(d, name: str) -> Path:
    """The whole page, not just the viewport."""
    size = d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = d.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def console_errors(d) -> list[str]:
    return [e["message"] for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def open_page(d, path: Path) -> None:
    d.get_log("browser")  # drop earlier entries
    set_viewport(d, *DESKTOP)
    d.get(path.as_uri())
    assert d.execute_script("return document.readyState") == "complete"


def tab(d, times: int = 1) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(times):
        ActionChains(d).send_keys(Keys.TAB).perform()


def active(d):
    return d.switch_to.active_element


def no_horizontal_scroll(d) -> bool:
    return d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


# ---------------------------------------------------------------- student report


def test_student_report_shows_score_and_failing_feedback(session, class_dir):
    driver = need(session)
    from selenium.webdriver.common.by import By

    open_page(driver, class_dir / "alice" / "report.html")
    h1 = driver.find_element(By.TAG_NAME, "h1")
    assert h1.is_displayed() and h1.text == "alice"
    score = driver.find_element(By.CSS_SELECTOR, ".big-score")
    assert score.is_displayed() and "/ 33 points" in score.text

    mistake = driver.find_element(By.CSS_SELECTOR, "li.mistake")
    assert mistake.is_displayed() and "Likely cause" in mistake.text
    failing = driver.find_element(By.CSS_SELECTOR, "li.test.failed")
    assert not failing.is_displayed()  # the tests a mistake affected are collapsed under it
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert failing.is_displayed()
    assert "Failed" in failing.find_element(By.CSS_SELECTOR, ".badge").text  # a word, not only a colour
    feedback = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "li.test.failed dl.feedback")]
    assert any("Expected" in text and "Found" in text for text in feedback)

    failing = next(e for e in driver.find_elements(By.CSS_SELECTOR, "li.test") if e.find_elements(By.TAG_NAME, "pre"))
    printed = failing.find_element(By.TAG_NAME, "pre")
    assert PAYLOAD in printed.text  # shown as text
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_elements(By.CSS_SELECTOR, "img") == []
    assert "Truncated" in failing.text

    assert driver.find_element(By.CSS_SELECTOR, "svg.chart").is_displayed()
    assert driver.find_element(By.CSS_SELECTOR, "tr.diverge").is_displayed()
    assert console_errors(driver) == []
    screenshot(driver, "student-report-desktop.png")


def test_student_report_keyboard(session, class_dir):
    driver = need(session)
    open_page(driver, class_dir / "alice" / "report.html")
    tab(driver)
    skip = active(driver)
    assert skip.get_attribute("class") == "skip-link" and skip.is_displayed()
    assert driver.execute_script("return arguments[0].getBoundingClientRect().top >= 0", skip)
    from selenium.webdriver.common.keys import Keys

    skip.send_keys(Keys.ENTER)
    assert driver.execute_script("return location.hash") == "#main"
    assert active(driver).get_attribute("id") == "main"
    # the class table's links lead to the mistakes; Enter jumps to one
    for _ in range(30):
        tab(driver)
        href = active(driver).get_attribute("href") or ""
        if "#mistake-" in href:
            break
    else:
        pytest.fail("keyboard focus never reached a link to a mistake")
    anchor = href.split("#", 1)[1]
    active(driver).send_keys(Keys.ENTER)
    assert driver.execute_script("return location.hash") == "#" + anchor
    assert driver.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return r.top >= -1 && r.top < window.innerHeight",  # -1: sub-pixel rounding of the scroll
        anchor,
    )
    assert console_errors(driver) == []


def test_student_report_on_a_phone(session, class_dir):
    driver = need(session)
    open_page(driver, class_dir / "alice" / "report.html")
    set_viewport(driver, *PHONE, mobile=True)
    driver.refresh()
    assert no_horizontal_scroll(driver), "the page scrolls sideways at 390 px"
    screenshot(driver, "student-report-phone.png")
    set_viewport(driver, *DESKTOP)


def test_student_report_prints(session, class_dir):
    driver = need(session)
    from selenium.webdriver.common.print_page_options import PrintOptions

    open_page(driver, class_dir / "alice" / "report.html")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        skip = driver.execute_script("return getComputedStyle(document.querySelector('.skip-link')).display")
        assert skip == "none"
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    pdf = base64.b64decode(driver.print_page(PrintOptions()))
    assert pdf.startswith(b"%PDF")
    (ARTIFACTS / "student-report.pdf").write_bytes(pdf)


def test_error_only_student_report(session, class_dir):
    """A submission where nothing imports: the problem is the first thing on the page."""
    driver = need(session)
    from selenium.webdriver.common.by import By

    r = make_result("bob", p_pass=0.0, broken_files=tuple({"resnet.py", "mobilenet.py", "inception.py", "vgg.py", "modern.py"}))
    assert all(t.outcome in (Outcome.error, Outcome.skipped) for t in r.tests)
    save(r, class_dir / "bob")
    assert cli.main(["report", str(class_dir / "bob")]) == 0
    open_page(driver, class_dir / "bob" / "report.html")
    notice = driver.find_element(By.CSS_SELECTOR, ".notice")
    assert notice.is_displayed() and "could not be graded" in notice.text
    first_section = driver.execute_script("return document.querySelector('main > section').className")
    assert first_section == "notice"
    assert console_errors(driver) == []


# ---------------------------------------------------------------- class report


def test_class_report_histogram_and_student_links(session, class_dir):
    driver = need(session)
    from selenium.webdriver.common.by import By

    open_page(driver, class_dir / "class-report.html")
    hist = driver.find_element(By.ID, "histogram")
    assert hist.is_displayed()
    assert len(hist.find_elements(By.CSS_SELECTOR, "rect.bar")) == 10
    links = driver.find_elements(By.CSS_SELECTOR, "#students ~ .table-wrap a[href$='/report.html']")
    assert len(links) == 25
    assert all(link.is_displayed() for link in links[:3])
    assert driver.find_element(By.ID, "mistakes").is_displayed()
    assert console_errors(driver) == []
    screenshot(driver, "class-report-desktop.png")

    links[0].click()
    assert driver.current_url.endswith("/alice/report.html")
    assert driver.find_element(By.TAG_NAME, "h1").text == "alice"
    assert console_errors(driver) == []


def test_class_report_keyboard_reaches_student_links(session, class_dir):
    driver = need(session)
    from selenium.webdriver.common.keys import Keys

    open_page(driver, class_dir / "class-report.html")
    tab(driver)
    assert active(driver).get_attribute("class") == "skip-link"
    for _ in range(60):
        tab(driver)
        href = active(driver).get_attribute("href") or ""
        if href.endswith("/report.html"):
            break
    else:
        pytest.fail("keyboard focus never reached a student's report link")
    outline = driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", active(driver))
    assert outline != "none", "focused links must show a focus outline"
    active(driver).send_keys(Keys.ENTER)
    assert driver.current_url.endswith("/report.html")


def test_class_report_on_a_phone(session, class_dir):
    driver = need(session)
    open_page(driver, class_dir / "class-report.html")
    set_viewport(driver, *PHONE, mobile=True)
    driver.refresh()
    assert no_horizontal_scroll(driver), "the page scrolls sideways at 390 px"
    screenshot(driver, "class-report-phone.png")
    set_viewport(driver, *DESKTOP)


# ---------------------------------------------------------------- the demo class, graded


BOB_PAGE_BEFORE_PX = 34_074  # bob's report at 1280 px when it listed every failed test


@pytest.mark.slow
def test_demo_reports_are_short_and_nothing_is_cut_on_a_phone(session, graded_demo):
    """bob, carol and dave as students see them, at 1280 and 390 px (screenshots in test-artifacts/)."""
    driver = need(session)
    ARTIFACTS.mkdir(exist_ok=True)
    heights = {}
    for student, (_, folder) in graded_demo.items():
        open_page(driver, folder / "report.html")
        heights[student] = driver.execute_script("return document.documentElement.scrollHeight")
        screenshot(driver, f"demo-{student}-1280.png")
        set_viewport(driver, *PHONE, mobile=True)
        driver.refresh()
        assert no_horizontal_scroll(driver), f"{student}'s page scrolls sideways at 390 px"
        cut = driver.execute_script(
            "return [...document.querySelectorAll('table.classes, .mistake, .score-line')]"
            ".filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".map(e => e.className || e.tagName)")
        assert cut == [], f"{student}: cut at 390 px: {cut}"
        screenshot(driver, f"demo-{student}-390.png")
        assert console_errors(driver) == []
    set_viewport(driver, *DESKTOP)
    assert heights["bob"] <= BOB_PAGE_BEFORE_PX / 4, heights


# ---------------------------------------------------------------- a class of 200, composed from the corpus

RENDER_LIMIT_S = 10.0


@pytest.fixture(scope="module")
def class_of_200(tmp_path_factory) -> Path:
    from syntheticclass import make_class as compose_class

    out = tmp_path_factory.mktemp("class-of-200")
    for r in compose_class(200):
        save(r, out / r.student)
    assert cli.main(["report", str(out)]) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    return out


def test_class_of_200_renders_fast_and_reads_top_down(session, class_of_200):
    driver = need(session)
    from selenium.webdriver.common.by import By

    open_page(driver, class_of_200 / "class-report.html")
    loaded_ms = driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
    assert 0 < loaded_ms < RENDER_LIMIT_S * 1000, f"the class report took {loaded_ms / 1000:.1f} s to load"
    print(f"class report of 200 students: loaded in {loaded_ms / 1000:.2f} s, "
          f"{(class_of_200 / 'class-report.html').stat().st_size / 1e3:.0f} kB")
    assert console_errors(driver) == []

    # what needs attention comes first, then the per-class table; every section is linked from the top
    sections = driver.execute_script("return [...document.querySelectorAll('main > section h2')].map(h => h.id)")
    assert sections[:3] == ["attention", "classes", "mistakes"] and "students" in sections
    contents = {a.get_attribute("hash") for a in driver.find_elements(By.CSS_SELECTOR, "nav .contents a")}
    assert {"#attention", "#classes", "#mistakes", "#students", "#tests"} <= contents
    rows = driver.find_elements(By.CSS_SELECTOR, "#class-table tbody tr")
    assert 20 <= len(rows) <= 30  # one per class or function, not one per test
    assert driver.find_element(By.ID, "per-test").get_attribute("open") is None  # the per-test table starts closed
    assert all("not run" not in r.text for r in rows)
    screenshot(driver, "class-report-200-desktop.png")

    driver.find_element(By.CSS_SELECTOR, "nav .contents a[href='#students']").click()
    assert driver.execute_script(
        "const r = document.getElementById('students').getBoundingClientRect(); return r.top > -2 && r.top < 200")
    link = driver.find_element(By.CSS_SELECTOR, "#mistakes ~ ol .class-mistake a[href$='/report.html']")
    name = link.text
    link.click()
    assert driver.current_url.endswith("/report.html")
    assert driver.find_element(By.TAG_NAME, "h1").text == name
    assert console_errors(driver) == []


def test_class_of_200_on_a_phone(session, class_of_200):
    driver = need(session)
    open_page(driver, class_of_200 / "class-report.html")
    set_viewport(driver, *PHONE, mobile=True)
    driver.refresh()
    assert no_horizontal_scroll(driver), "the page scrolls sideways at 390 px"
    screenshot(driver, "class-report-200-phone.png")
    set_viewport(driver, *DESKTOP)
