"""segsync.sync.http: header values (issue 7.4) and the one status classifier every plugin uses."""

from __future__ import annotations

import pytest

from segsync.errors import (
    AuthError,
    PermanentError,
    PermissionDenied,
    RateLimited,
    RetriableError,
    TransientError,
)
from segsync.sync.http import TRANSIENT_4XX, error_class, header, header_count, header_number


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


# -- the status classifier -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, TransientError),  # no answer: timeout, refused, dropped
        (200, None),
        (201, None),
        (204, None),
        (207, None),
        (100, PermanentError),
        (301, PermanentError),  # redirects are off: a moved base URL is a configuration error
        (304, PermanentError),
        (400, PermanentError),
        (401, AuthError),
        (402, PermanentError),
        (403, PermissionDenied),
        (404, PermanentError),
        (405, PermanentError),
        (408, TransientError),
        (409, PermanentError),
        (413, PermanentError),
        (422, PermanentError),
        (423, TransientError),
        (425, TransientError),
        (429, RateLimited),
        (477, TransientError),
        (499, PermanentError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
        (524, TransientError),
        (599, TransientError),
    ],
)
def test_every_status_has_one_error_class(status, expected):
    assert error_class(status) is expected


@pytest.mark.parametrize("status", [200, 201, 202, 204, 207])
@pytest.mark.parametrize(
    ("readable", "documented", "expected"),
    [
        (True, True, None),
        (False, True, TransientError),  # damaged in transit: may or may not have been applied
        (False, False, TransientError),  # unreadable wins: nothing was read to say it is another answer
        (True, False, PermanentError),  # read whole, but not the documented answer: the API changed
    ],
)
def test_a_success_the_plugin_cannot_use(status, readable, documented, expected):
    assert error_class(status, readable=readable, documented=documented) is expected


@pytest.mark.parametrize("status", [None, 401, 403, 404, 429, 500])
def test_body_flags_only_matter_for_a_success(status):
    assert error_class(status, readable=False, documented=False) is error_class(status)


def test_the_transient_4xx_are_the_union_of_both_crms():
    assert {408, 425} <= TRANSIENT_4XX  # Brevo
    assert {423, 477} <= TRANSIENT_4XX  # HubSpot
    assert all(issubclass(error_class(s) or object, RetriableError) for s in TRANSIENT_4XX)
