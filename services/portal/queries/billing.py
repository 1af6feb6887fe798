"""Billing export: the monthly usage table (:func:`services.portal.queries.usage.monthly_usage`,
scoped in its query) as CSV — what an MSP bills from, opened in a spreadsheet.

A month's line per account gives the days it reported, the average and the peak of those days'
storage, the last report's storage and its quota: billing by average, peak or month-end use each
finds its column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from services.portal.queries.usage import MonthlyUsage

CSV_COLUMNS = ("month", "customer", "account", "customer_id", "account_id", "days_reported",
               "average_bytes", "peak_bytes", "last_bytes", "quota_bytes")
# What a spreadsheet takes for the start of a formula.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def as_csv(lines: Iterable[MonthlyUsage]) -> str:
    """RFC 4180 with a header row. Names a spreadsheet would run as a formula (a customer named
    ``=HYPERLINK(…)``) are prefixed with a quote."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow([line.month, _inert(line.customer_name), _inert(line.account_name),
                         line.customer_id, line.account_id, line.days_reported,
                         line.average_bytes, line.peak_bytes, line.last_bytes,
                         "" if line.quota_bytes is None else line.quota_bytes])
    return out.getvalue()


def _inert(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA) else text
