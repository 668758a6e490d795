"""Reports for a class of 200 stay small; the timing itself is bench/report_speed.py's job."""

from __future__ import annotations

from benches import load_bench

MAX_PAGE_BYTES = 2_000_000


def test_200_students_pages_exist_and_stay_under_2_mb(tmp_path):
    result = load_bench("report_speed").run(200, tmp_path)
    assert result["students"] == 200
    assert len(result["pages"]) == 200
    for page in result["pages"]:
        assert page.is_file()
        assert page.stat().st_size < MAX_PAGE_BYTES, page
    # every 10th student printed 200,000 characters in each test: truncation bounds the page
    big = tmp_path / "student-001" / "report.html"
    assert "Truncated: showing the first 2,000 of 200,000 characters" in big.read_text(encoding="utf-8")
    assert result["class_page"].stat().st_size < MAX_PAGE_BYTES
    assert (tmp_path / "class-report.html").is_file()
