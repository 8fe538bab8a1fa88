"""The CRM search API in the sandbox: ``POST /crm/v3/objects/{contacts,deals}/search``.

As crm-api-facts §1.4 describes it, strictly where it is unconfirmed: every body field the
official spec requires (``after``, ``filterGroups``, ``limit``, ``properties``, ``sorts``),
at most 5 filter groups, 10 filters a group and 25 in all, ``limit`` at most 200, one sort,
no associations in results, a 400 for a page that reaches past the result cap (10,000), and
no order a client could rely on unless it sorts by the documented object form.
Search has its own rate limit (``search_per_second``), outside the ten-secondly one.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from segsync.sandbox import Request, Response
from segsync_hubspot.sandbox.account import Record
from segsync_hubspot.sandbox.wire import Endpoint, Routes, error, json_body

SEARCH_LIMIT_MAX = 200
CONTACTS_READ = ("crm.objects.contacts.read",)
DEALS_READ = ("crm.objects.deals.read",)
_REQUIRED = ("after", "filterGroups", "limit", "properties", "sorts")
_OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY")
#: Properties compared as numbers: dates are sent as ms since the epoch, ids as integers.
_DATES = ("hs_lastmodifieddate", "lastmodifieddate", "createdate", "closedate")
_NUMBERS = ("hs_object_id",)


def _number(name: str, raw: str) -> float | None:
    if name in _DATES and not re.fullmatch(r"-?\d+", raw):
        try:
            return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            return None
    try:
        return float(raw)
    except ValueError:
        return None


def _test(f: Mapping[str, Any]) -> Callable[[Record], bool]:
    name, op = str(f.get("propertyName") or ""), f.get("operator")
    if not name or op not in _OPERATORS:
        raise error(400, f"Invalid filter: operator {op!r} on property {name!r}")
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        want = op == "HAS_PROPERTY"
        return lambda r: bool((r.properties.get(name) not in (None, "")) == want)
    if op in ("IN", "NOT_IN"):
        values = {str(v) for v in f.get("values") or ()}
        inside = op == "IN"
        return lambda r: bool((r.properties.get(name) in values) == inside)
    if "value" not in f:
        raise error(400, f"Invalid filter: {op} on {name!r} needs a value")
    numeric = name in _DATES or name in _NUMBERS
    target = _number(name, str(f["value"])) if numeric else str(f["value"])
    if target is None:
        raise error(400, f"Invalid filter value {f['value']!r} for property {name!r}")

    def test(r: Record) -> bool:
        raw = r.properties.get(name)
        if raw is None:
            return bool(op == "NEQ")
        got: Any = _number(name, raw) if numeric else raw
        if got is None:
            return False
        return bool(
            {
                "EQ": got == target,
                "NEQ": got != target,
                "LT": got < target,
                "LTE": got <= target,
                "GT": got > target,
                "GTE": got >= target,
            }[op]
        )

    return test


def _matcher(groups: Any) -> Callable[[Record], bool]:
    if not isinstance(groups, list) or len(groups) > 5:
        raise error(400, "filterGroups must be a list of at most 5 groups")
    tests: list[list[Callable[[Record], bool]]] = []
    total = 0
    for g in groups:
        filters = g.get("filters") if isinstance(g, dict) else None
        if not isinstance(filters, list) or len(filters) > 10:
            raise error(400, "each filter group holds a list of at most 10 filters")
        total += len(filters)
        tests.append([_test(f) for f in filters if isinstance(f, dict)])
    if total > 25:
        raise error(400, f"a search may hold at most 25 filters in all ({total} sent)")
    if not tests:
        return lambda r: True
    return lambda r: any(all(t(r) for t in group) for group in tests)


def _sort_key(sorts: Any) -> tuple[Callable[[Record], Any], bool]:
    """The order of results. Without a sort, or with the string form the official spec types
    (HubSpot does not sort by it: HubSpot/hubspot-api-nodejs#14), an order no client may rely
    on: scrambled, the same for every page."""
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise error(400, "the sandbox takes one sort (HubSpot sorts by one property)")
    if not sorts or isinstance(sorts[0], str):
        return (lambda r: zlib.crc32(r.id.encode())), False
    s = sorts[0]
    if not isinstance(s, dict) or s.get("direction") not in ("ASCENDING", "DESCENDING"):
        raise error(400, "a sort is {propertyName, direction: ASCENDING | DESCENDING}")
    name = str(s.get("propertyName"))

    def key(r: Record) -> Any:
        raw = r.properties.get(name, "")
        value = _number(name, raw) if (name in _DATES or name in _NUMBERS) and raw else None
        return (value if value is not None else float("-inf"), int(r.id))

    return key, s["direction"] == "DESCENDING"


class SearchRoutes(Routes):
    """Search over contacts and deals."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            (
                "POST",
                r"/crm/v3/objects/contacts/search",
                self.search_contacts,
                ("crm.objects.contacts.read",),
            ),
            ("POST", r"/crm/v3/objects/(?:deals|0-3)/search", self.search_deals, ("crm.objects.deals.read",)),
        )

    def search_contacts(self, req: Request, m: re.Match[str]) -> Response:
        return self._search(req, self.account.contacts.values())

    def search_deals(self, req: Request, m: re.Match[str]) -> Response:
        return self._search(req, self.account.deals.values())

    def _search(self, req: Request, records: Iterable[Record]) -> Response:
        body = json_body(req)
        if not isinstance(body, dict):
            raise error(400, "the search body is a PublicObjectSearchRequest object")
        missing = [k for k in _REQUIRED if k not in body]
        if missing:
            raise error(400, f"missing required field(s) {', '.join(missing)}")
        limit, after = body["limit"], str(body["after"] or "0")
        if not isinstance(limit, int) or not 0 < limit <= SEARCH_LIMIT_MAX or not after.isdigit():
            raise error(400, f"limit is 1..{SEARCH_LIMIT_MAX} and after a cursor from a previous page")
        start, cap = int(after), self.sandbox.search_cap
        if start + limit > cap:
            raise error(400, f"the search cannot page past {cap} results; narrow the filters instead")
        matches = _matcher(body["filterGroups"])
        key, descending = _sort_key(body["sorts"])
        found = sorted((r for r in records if not r.archived and matches(r)), key=key, reverse=descending)
        names: Sequence[str] = [str(n) for n in body["properties"] or ()]
        page = found[start : start + limit]
        out: dict[str, Any] = {"total": len(found), "results": [r.json(names) for r in page]}
        nxt = start + limit
        if nxt < len(found) and nxt < cap:
            out["paging"] = {"next": {"after": str(nxt)}}
        return Response(200, out)
