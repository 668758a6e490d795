"""The student report's notebook section in headless Chromium (screenshots in test-artifacts/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from notebooks import PIP_CELL, PLOT_CELL, notebook_bytes, reference_cells, training_cell  # noqa: E402
from resultfactory import make_result  # noqa: E402
from test_reports_chromium import (  # noqa: E402,F401 - session is a fixture
    ARTIFACTS,
    PHONE,
    console_errors,
    need,
    no_horizontal_scroll,
    open_page,
    screenshot,
    session,
    set_viewport,
)

from grader.intake.notebook.take import rules_for, take_notebooks  # noqa: E402
from grader.report import write_student_report  # noqa: E402
from grader.spec import find_spec  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def notebook_report(tmp_path_factory) -> Path:
    spec = find_spec("day09")
    cells = reference_cells(spec.reference, spec.files) + [PIP_CELL, training_cell(Path("/nonexistent/marker")),
                                                            PLOT_CELL]
    files = {"day09.ipynb": notebook_bytes(cells), "vgg.py": (spec.reference / "vgg.py").read_bytes()}
    taken = take_notebooks(files, spec.files, rules_for(spec))
    result = make_result("nora", seed=3)
    result.notebook = taken.report
    out = tmp_path_factory.mktemp("nora")
    write_student_report(result, out)
    ARTIFACTS.mkdir(exist_ok=True)
    return out / "report.html"


def test_the_notebook_section_shows_taken_and_left_out_cells(session, notebook_report):
    driver = need(session)
    from selenium.webdriver.common.by import By

    open_page(driver, notebook_report)
    section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=notebook]")
    assert section.is_displayed()
    text = section.text
    assert "Your notebook" in text and "Read from day09.ipynb" in text
    assert "Your vgg.py counts" in text
    assert "a loop at the top level (such as a training loop) never runs" in text
    assert "!pip install torch torchvision" in text
    rows = section.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert len(rows) >= 4 and all(r.is_displayed() for r in rows)
    # cells taken whole are folded away until asked for
    details = section.find_element(By.TAG_NAME, "details")
    whole = details.find_element(By.TAG_NAME, "ul")
    assert not whole.is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert whole.is_displayed() and "ResidualBlock" in whole.text
    assert console_errors(driver) == []
    driver.execute_script("arguments[0].scrollIntoView()", section)
    section.screenshot(str(ARTIFACTS / "student-report-notebook-section.png"))
    screenshot(driver, "student-report-notebook-desktop.png")

    set_viewport(driver, *PHONE, mobile=True)
    driver.get(notebook_report.as_uri())
    assert no_horizontal_scroll(driver)
    section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=notebook]")
    driver.execute_script("arguments[0].scrollIntoView()", section)
    section.screenshot(str(ARTIFACTS / "student-report-notebook-section-phone.png"))
    screenshot(driver, "student-report-notebook-phone.png")
