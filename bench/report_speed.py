"""How long the HTML reports of a class take, and how big each student's page gets.

Run: .venv/bin/python bench/report_speed.py [N_STUDENTS]

It grades nothing: it writes N synthetic grading.json files (every 10th student
printed 200,000 characters in every test, to show that truncation bounds the page
size), then times what `grader report DIR` does: read every grading.json, write
every report.html, write class-report.html.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic results live with the tests

from resultfactory import make_class  # noqa: E402

from grader.report import REPORT_FILE, write_class_report, write_student_report  # noqa: E402
from grader.report.collect import collect  # noqa: E402
from grader.results import save  # noqa: E402

BIG_OUTPUT = 200_000


def prepare(out_dir: Path, n: int) -> None:
    for i, r in enumerate(make_class(n)):
        if i % 10 == 0:
            for t in r.tests:
                t.stdout = ("loss: nan <b>step</b>\n" * (BIG_OUTPUT // 22 + 1))[:BIG_OUTPUT]
        save(r, out_dir / r.student)


def run(n: int = 200, out_dir: Path | None = None) -> dict:
    """Write ``n`` synthetic results into ``out_dir`` and time rebuilding every report from them."""
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="report-speed-"))
    prepare(out_dir, n)
    t0 = time.perf_counter()
    found = collect(out_dir)
    t1 = time.perf_counter()
    pages = [write_student_report(g.result, out_dir / g.folder) for g in found.graded]
    t2 = time.perf_counter()
    class_page = write_class_report(out_dir, found)
    t3 = time.perf_counter()
    sizes = [p.stat().st_size for p in pages]
    return {
        "students": len(found.graded),
        "out_dir": out_dir,
        "pages": pages,
        "class_page": class_page,
        "load_s": t1 - t0,
        "students_s": t2 - t1,
        "class_s": t3 - t2,
        "total_s": t3 - t0,
        "max_page_bytes": max(sizes),
        "class_page_bytes": class_page.stat().st_size,
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(prefix="report-speed-") as tmp:
        r = run(n, Path(tmp))
        assert all((Path(tmp) / p.parent.name / REPORT_FILE).is_file() for p in r["pages"])
    print(f"machine: {cpu_name()} ({platform.processor() or platform.machine()}), {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"{r['students']} students: read grading.json {r['load_s']:.2f} s, "
          f"student reports {r['students_s']:.2f} s, class report {r['class_s']:.2f} s, "
          f"total {r['total_s']:.2f} s")
    print(f"largest student page {r['max_page_bytes'] / 1e6:.2f} MB, class page {r['class_page_bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
