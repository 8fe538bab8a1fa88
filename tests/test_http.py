"""segsync.sync.http: header values every plugin reads the same way (issue 7.4)."""

from __future__ import annotations

import pytest

from segsync.sync.http import header, header_count, header_number


@pytest.mark.parametrize(
    ("raw", "number", "count"),
    [
        ("12", 12.0, 12),
        (" 12.5 ", 12.5, 12),
        ("0", 0.0, 0),
        ("nan", None, None),
        ("NaN", None, None),
        ("inf", None, None),
        ("-Infinity", None, None),
        ("1e999", None, None),
        ("-1", None, None),
        ("", None, None),
        ("ten", None, None),
        ("1e300", 1e300, None),
        (None, None, None),
    ],
)
def test_unreadable_values_are_absent(raw, number, count):
    assert header_number(raw) == number
    assert header_count(raw) == count


def test_header_names_are_case_insensitive():
    assert header({"X-HubSpot-RateLimit-Remaining": "5"}, "x-hubspot-ratelimit-remaining") == "5"
    assert header({}, "a") is None
    assert header(None, "a") is None
