"""HTML reports (per student and per class) and gradebook exports, all read from ``grading.json``."""

from grader.report.classreport import CLASS_REPORT_FILE, write_class_report
from grader.report.html import REPORT_FILE, render_student, write_student_report

__all__ = ["CLASS_REPORT_FILE", "REPORT_FILE", "render_student", "write_class_report", "write_student_report"]
