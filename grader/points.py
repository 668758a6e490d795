"""How points and percentages are shown: one rounding rule for the CLI, the CSV exports, the HTML reports and
``results.json``.

A number of points is rounded half away from zero to two decimals (72.375 -> 72.38, 0.125 -> 0.13) and written
without trailing zeros (72.5, 72); a percentage follows the same rule. Float noise is removed first (to nine
decimals), so a sum that binary floating point holds as 72.37499999999999 rounds as the 72.375 it stands for. ``grading.json`` keeps the exact sums; everything a person or another system reads
(``results.json``, the exports, the pages, the terminal) shows the rounded value, so they agree to the last digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

DECIMALS = 2


def round_points(x: float, decimals: int = DECIMALS) -> float:
    """``x`` rounded half away from zero to ``decimals`` places."""
    exact = Decimal(repr(round(float(x), 9)))
    return float(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)) + 0.0


def points_text(x: float | None, missing: str = "-") -> str:
    """``x`` as shown: rounded by ``round_points``, no exponent, no trailing zeros (``72.38``, ``72.5``, ``72``)."""
    if x is None:
        return missing
    text = f"{round_points(x):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def percent(got: float, out_of: float) -> float:
    """The exact percentage (0 when there is nothing to get); round it only to show it."""
    return 100.0 * got / out_of if out_of else 0.0


def percent_text(got: float, out_of: float) -> str:
    """``got`` out of ``out_of`` as a percentage, shown by the same rule (``72.38``), without the sign."""
    return points_text(percent(got, out_of))
