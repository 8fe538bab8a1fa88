"""A loopback emulator of the HubSpot API endpoints segsync uses, as strict as the real service.

The real SDK talks to it over HTTP. It answers with the success codes the SDK maps
(crm-api-facts §1.2), refuses what HubSpot refuses — a missing or wrong Bearer token (401),
missing scopes (403 ``MISSING_SCOPES``), batches over 100 inputs (1000 for association reads),
pages over the maximum, duplicate list names (case-insensitive), property definitions and values
of the wrong type, request bodies missing fields the spec requires — and rate-limits every call
per rolling 10-second window with 429s and the ``X-HubSpot-RateLimit-*`` headers. Unknown or
deleted ids in batches come back as 207 per-input errors. Error bodies have HubSpot's shape.

Run it with ``segsync sandbox hubspot --port P --token T [--seed demo | --seed-from DIR]``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hmac
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from segsync.sandbox import (
    EmulatorServer,
    FaultPlan,
    HttpError,
    Request,
    Response,
    SeedData,
    SeedRules,
    derived_account_id,
)
from segsync.sync.runner import Clock
from segsync_hubspot.sandbox_account import (
    HOME_PIPELINE,
    SEED_RULES,
    Account,
    HubList,
    InvalidValue,
    Property,
    Record,
    check_filter_branch,
    check_options,
    check_property_input,
    id_key,
    iso,
    stored_options,
)

Handler = Callable[[Request, "re.Match[str]"], Response]

CONTACT_DEFAULT_PROPERTIES = ("firstname", "lastname", "email")
DEAL_DEFAULT_PROPERTIES = ("dealname", "amount", "closedate", "pipeline", "dealstage")
PAGE_MAX = 100
BATCH_MAX = 100
ASSOCIATION_BATCH_MAX = 1000
MEMBERSHIP_PAGE_MAX = 250
TEN_SECONDS = 10.0
DAY = 86_400.0

_CATEGORY = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "VALIDATION_ERROR",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}

# Scopes each endpoint needs (the specs' security lists, narrowed to what a private app uses).
CONTACTS_READ = ("crm.objects.contacts.read",)
CONTACTS_WRITE = ("crm.objects.contacts.write",)
DEALS_READ = ("crm.objects.deals.read",)
SCHEMAS_READ = ("crm.schemas.contacts.read",)
SCHEMAS_WRITE = ("crm.schemas.contacts.write",)
LISTS_READ = ("crm.lists.read",)
LISTS_WRITE = ("crm.lists.read", "crm.lists.write")  # membership writes need read too (facts §3.7)


def error(status: int, message: str, category: str | None = None, **extra: Any) -> HttpError:
    """HubSpot's single-error body (``Error``: category, correlationId, message)."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category or _CATEGORY.get(status, "ERROR"),
        **extra,
    }
    return HttpError(status, body)


def item_error(
    category: str, message: str, *, ids: Sequence[str] = (), code: str = "", properties: Sequence[str] = ()
) -> dict[str, Any]:
    """One entry of a 207's ``errors`` (``StandardError``); the failing input ids in ``context.ids``."""
    context: dict[str, list[str]] = {}
    if ids:
        context["ids"] = list(ids)
    if properties:
        context["propertyName"] = list(properties)
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [{"message": message, "code": code}] if code else [],
        "links": {},
    }


def not_found(record_id: str) -> dict[str, Any]:
    """The 207 entry for an input naming a record that does not exist (or was deleted)."""
    return item_error("OBJECT_NOT_FOUND", "Object not found.", ids=[record_id], code="OBJECT_NOT_FOUND")


class HubSpotServer(EmulatorServer):
    """Routes, auth, scopes and rate limits of the emulated portal."""

    def __init__(
        self,
        sandbox: HubSpotSandbox,
        *,
        port: int,
        traffic_log: Path | None,
        faults: FaultPlan | None,
        clock: Clock | None,
    ) -> None:
        super().__init__(port=port, traffic_log=traffic_log, faults=faults, clock=clock)
        self.sandbox = sandbox
        self.account = sandbox.account
        self._scopes: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = []
        self._rate_headers: dict[str, str] = {}
        self.configure_rates()
        self._add_routes()

    # -- configuration --------------------------------------------------------------------

    def configure_rates(self) -> None:
        self.rates.configure("ten_secondly", [(self.sandbox.rate_limit, TEN_SECONDS)])
        self.rates.configure("daily", [(self.sandbox.daily_limit, DAY)])

    def _route(self, method: str, pattern: str, handler: Handler, scopes: tuple[str, ...]) -> None:
        self.route(method, pattern, handler)
        self._scopes.append((method, re.compile(f"^{pattern}$"), scopes))

    def _add_routes(self) -> None:
        r = self._route
        r("GET", r"/account-info/v3/details", self.get_account_details, ())
        r("GET", r"/crm/v3/objects/contacts", self.get_contacts, CONTACTS_READ)
        r("POST", r"/crm/v3/objects/contacts/batch/update", self.update_contacts, CONTACTS_WRITE)
        r("GET", r"/crm/v3/objects/(?:deals|0-3)", self.get_deals, DEALS_READ)
        r("GET", r"/crm/v3/pipelines/([^/]+)", self.get_pipelines, DEALS_READ)
        r("POST", r"/crm/v4/associations/([^/]+)/([^/]+)/batch/read", self.read_associations, DEALS_READ)
        r("GET", r"/crm/v3/properties/contacts/groups", self.get_groups, SCHEMAS_READ)
        r("POST", r"/crm/v3/properties/contacts/groups", self.create_group, SCHEMAS_WRITE)
        r("POST", r"/crm/v3/properties/contacts/batch/create", self.create_properties, SCHEMAS_WRITE)
        r("GET", r"/crm/v3/properties/(contacts|deals|0-1|0-3)", self.get_properties, SCHEMAS_READ)
        r("POST", r"/crm/v3/properties/contacts", self.create_property, SCHEMAS_WRITE)
        r("PATCH", r"/crm/v3/properties/contacts/([^/]+)", self.update_property, SCHEMAS_WRITE)
        r("POST", r"/crm/v3/lists/?", self.create_list, ("crm.lists.write",))
        r("GET", r"/crm/v3/lists/?", self.get_lists, LISTS_READ)
        r("GET", r"/crm/v3/lists/object-type-id/([^/]+)/name/(.+)", self.get_list_by_name, LISTS_READ)
        r("GET", r"/crm/v3/lists/(\d+)", self.get_list, LISTS_READ)
        r("DELETE", r"/crm/v3/lists/(\d+)", self.remove_list, LISTS_WRITE)
        r("PUT", r"/crm/v3/lists/([^/]+)/memberships/add-and-remove", self.change_members, LISTS_WRITE)
        r("GET", r"/crm/v3/lists/([^/]+)/memberships", self.get_members, LISTS_READ)

    # -- EmulatorServer hooks ---------------------------------------------------------------

    def authenticate(self, req: Request) -> Response | None:
        auth = req.header("Authorization")
        if not auth or not auth.startswith("Bearer "):
            return error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication; "
                "send the private app access token as 'Authorization: Bearer <token>'.",
            ).response
        if not hmac.compare_digest(auth[len("Bearer ") :].encode(), self.sandbox.secret.encode()):
            return error(401, "The access token provided is invalid or has expired.").response
        granted = self.sandbox.scopes
        if granted is None:
            return None
        needed = next(
            (
                scopes
                for method, pattern, scopes in self._scopes
                if method == req.method and pattern.match(req.path)
            ),
            (),
        )
        missing = [s for s in needed if s not in granted]
        if not missing:
            return None
        text = "This app hasn't been granted all required scopes to make this call."
        return error(
            403,
            text,
            context={"requiredScopes": missing},
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredScopes": missing},
                }
            ],
            links={"scopes": "https://developers.hubspot.com/scopes"},
        ).response

    def error_body(self, status: int, message: str) -> Any:
        return error(status, message).response.body

    def _limit_headers(
        self, limit: int, remaining: int, daily_remaining: int | None = None
    ) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(TEN_SECONDS * 1000)),
            "X-HubSpot-RateLimit-Daily": str(self.sandbox.daily_limit),
        }
        if daily_remaining is not None:
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(daily_remaining, 0))
        return headers

    def _too_many(self, policy: str, headers: dict[str, str], reset: float) -> Response:
        name = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "daily"
        body = {
            "status": "error",
            "message": f"You have reached your {name} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        }
        if self.sandbox.retry_after_header:
            headers["Retry-After"] = str(max(1, math.ceil(reset)))
        return Response(429, body, headers)

    def rate_limited(self, req: Request) -> Response | None:
        ok, limit, remaining, reset = self.rates.take("ten_secondly")
        if not ok:
            return self._too_many("TEN_SECONDLY_ROLLING", self._limit_headers(limit, 0), reset)
        day_ok, _, day_remaining, day_reset = self.rates.take("daily")
        if not day_ok:
            return self._too_many("DAILY", self._limit_headers(limit, remaining, 0), day_reset)
        self._rate_headers = self._limit_headers(limit, remaining, day_remaining)
        return None

    def decorate(self, req: Request, resp: Response) -> None:
        for k, v in self._rate_headers.items():
            resp.headers.setdefault(k, v)
        resp.headers.update(self.sandbox.header_overrides)

    def fault_response(self, kind: str, req: Request) -> Response:
        if kind == "429":
            return self._too_many(
                "TEN_SECONDLY_ROLLING", self._limit_headers(self.sandbox.rate_limit, 0), TEN_SECONDS
            )
        status = int(kind)
        return error(status, "An internal error occurred; try again.", "INTERNAL_ERROR").response

    # -- request helpers -----------------------------------------------------------------

    def _now(self) -> str:
        return iso(self.sandbox.wall_clock())

    @staticmethod
    def _json(req: Request) -> Any:
        try:
            return req.json()
        except HttpError:
            raise error(400, "Invalid input JSON: the request body must be a JSON document.") from None

    @staticmethod
    def _limit(req: Request, default: int, maximum: int) -> int:
        raw = req.arg("limit")
        if raw is None:
            return default
        if not re.fullmatch(r"\d+", raw) or not 1 <= int(raw) <= maximum:
            raise error(400, f"limit must be a whole number from 1 to {maximum}; got {raw!r}")
        return int(raw)

    @staticmethod
    def _names(req: Request, key: str) -> list[str]:
        return [n.strip() for raw in req.args(key) for n in raw.split(",") if n.strip()]

    @staticmethod
    def _bool(req: Request, key: str) -> bool:
        raw = (req.arg(key) or "false").lower()
        if raw not in ("true", "false"):
            raise error(400, f"{key} must be true or false")
        return raw == "true"

    @staticmethod
    def _cursor(raw: str | None) -> str | None:
        if raw is not None and not re.fullmatch(r"\d+", raw):
            raise error(400, f"Invalid paging cursor {raw!r}")
        return raw

    @staticmethod
    def _inputs(body: Any, maximum: int) -> list[Any]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise error(400, "Invalid input: 'inputs' is required and must be a list")
        inputs: list[Any] = body["inputs"]
        if len(inputs) > maximum:
            raise error(
                400,
                f"Batch input limit exceeded: {len(inputs)} inputs were sent, the maximum is {maximum}.",
                context={"maxInputs": [str(maximum)]},
            )
        return inputs

    def _batch(self, results: list[Any], errors: list[dict[str, Any]], ok: int, started: str) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": self._now(),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return Response(207, body)
        return Response(ok, body)

    def _page(self, ids: Sequence[str], after: str | None, limit: int) -> tuple[Sequence[str], str | None]:
        """A window of id-ordered ids; the cursor is the next id, so deletions never skip records."""
        keys = [id_key(i) for i in ids]
        start = bisect.bisect_left(keys, id_key(after)) if after else 0
        page = ids[start : start + limit]
        nxt = ids[start + limit] if start + limit < len(ids) else None
        return page, nxt

    def _paging(self, req: Request, nxt: str | None) -> dict[str, Any]:
        if nxt is None:
            return {}
        return {"paging": {"next": {"after": nxt, "link": f"{self.base}{req.path}?after={nxt}"}}}

    # -- objects -------------------------------------------------------------------------

    def _objects(
        self, req: Request, store: dict[str, Record], defaults: Sequence[str], deals: bool
    ) -> Response:
        limit = self._limit(req, 10, PAGE_MAX)
        if req.args("propertiesWithHistory"):
            raise error(400, "propertiesWithHistory is not supported by the sandbox")
        names = self._names(req, "properties") or list(defaults)
        with_contacts = deals and bool({"contacts", "0-1"} & set(self._names(req, "associations")))
        records = {r.id: r for r in self.account.live(store, archived=self._bool(req, "archived"))}
        page, nxt = self._page(list(records), self._cursor(req.arg("after")), limit)
        results = [
            records[i].json(names, self.account.deal_contacts(records[i]) if with_contacts else None)
            for i in page
        ]
        return Response(200, {"results": results, **self._paging(req, nxt)})

    def get_account_details(self, req: Request, m: re.Match[str]) -> Response:
        """``PortalInformationResponse``: the portal the token belongs to (any private app may ask)."""
        return Response(
            200,
            {
                "portalId": int(self.sandbox.account_id),
                "accountType": "STANDARD",
                "companyCurrency": self.account.home_currency,
                "additionalCurrencies": [],
                "timeZone": "UTC",
                "utcOffset": "+00:00",
                "utcOffsetMilliseconds": 0,
                "dataHostingLocation": "na1",
                "uiDomain": "app.hubspot.com",
            },
        )

    def get_contacts(self, req: Request, m: re.Match[str]) -> Response:
        return self._objects(req, self.account.contacts, CONTACT_DEFAULT_PROPERTIES, deals=False)

    def get_deals(self, req: Request, m: re.Match[str]) -> Response:
        return self._objects(req, self.account.deals, DEAL_DEFAULT_PROPERTIES, deals=True)

    def update_contacts(self, req: Request, m: re.Match[str]) -> Response:
        started = self._now()
        inputs = self._inputs(self._json(req), BATCH_MAX)
        ids: list[str] = []
        for inp in inputs:
            if (
                not isinstance(inp, dict)
                or not isinstance(inp.get("id"), str)
                or not isinstance(inp.get("properties"), dict)
            ):
                raise error(400, "Invalid input: every input needs an 'id' string and a 'properties' object")
            if "idProperty" in inp:
                raise error(400, "idProperty is not supported by the sandbox; send record ids")
            ids.append(inp["id"])
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise error(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")
        props = self.account.properties["contacts"]
        accepted: list[tuple[Record, dict[str, str | None]]] = []
        errors: list[dict[str, Any]] = []
        invalid: list[str] = []
        for inp in inputs:
            contact = self.account.contacts.get(inp["id"])
            if contact is None or contact.archived:
                errors.append(not_found(inp["id"]))
                continue
            staged: dict[str, str | None] = {}
            problems: list[tuple[str, str]] = []
            for name, raw in inp["properties"].items():
                prop = props.get(name)
                if prop is None:
                    problems.append(("PROPERTY_DOESNT_EXIST", name))
                elif prop.read_only:
                    problems.append(("READ_ONLY_VALUE", name))
                elif not isinstance(raw, str):
                    problems.append(("INVALID_TYPE", name))
                else:
                    try:
                        staged[name] = prop.normalise(raw)
                    except InvalidValue as exc:
                        problems.append((exc.code, name))
            if problems:
                invalid.append(contact.id)
                errors.append(
                    item_error(
                        "VALIDATION_ERROR",
                        "Property values were not valid",
                        ids=[contact.id],
                        code=problems[0][0],
                        properties=[n for _, n in problems],
                    )
                )
                continue
            accepted.append((contact, staged))
        if invalid and self.sandbox.whole_batch_validation:
            raise error(400, "Property values were not valid", context={"ids": invalid})
        stamp = self._now()
        results: list[Any] = []
        for contact, staged in accepted:
            for name, value in staged.items():
                if value is None:
                    contact.properties.pop(name, None)
                else:
                    contact.properties[name] = value
            contact.properties["lastmodifieddate"] = contact.updated_at = stamp
            results.append(contact.json(staged))
        return self._batch(results, errors, 200, started)

    # -- deals: pipelines and associations -----------------------------------------------

    def get_pipelines(self, req: Request, m: re.Match[str]) -> Response:
        if m.group(1) not in ("deals", "0-3"):
            raise error(400, f"the sandbox has pipelines for deals only, not {m.group(1)!r}")
        return Response(200, {"results": self.account.pipelines})

    def read_associations(self, req: Request, m: re.Match[str]) -> Response:
        if m.group(1) not in ("deals", "0-3") or m.group(2) not in ("contacts", "0-1"):
            raise error(400, "the sandbox serves deal-to-contact associations only")
        started = self._now()
        inputs = self._inputs(self._json(req), ASSOCIATION_BATCH_MAX)
        for inp in inputs:
            if not isinstance(inp, dict) or not isinstance(inp.get("id"), str):
                raise error(400, "Invalid input: every input needs an 'id' string")
            self._cursor(inp.get("after"))
        size = self.sandbox.association_page_size
        results: list[Any] = []
        errors: list[dict[str, Any]] = []
        for inp in inputs:
            deal = self.account.deals.get(inp["id"])
            if deal is None or deal.archived:
                errors.append(not_found(inp["id"]))
                continue
            contacts = self.account.deal_contacts(deal)
            if not contacts:
                errors.append(
                    item_error(
                        "OBJECT_NOT_FOUND",
                        f"No contacts are associated with deal {deal.id}.",
                        ids=[deal.id],
                        code="NO_ASSOCIATIONS_FOUND",
                    )
                )
                continue
            offset = int(inp.get("after") or 0)
            result: dict[str, Any] = {
                "from": {"id": deal.id},
                "to": [
                    {"toObjectId": c, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3}]}
                    for c in contacts[offset : offset + size]
                ],
            }
            if offset + size < len(contacts):
                result["paging"] = {"next": {"after": str(offset + size)}}
            results.append(result)
        return self._batch(results, errors, 200, started)

    # -- properties ----------------------------------------------------------------------

    def get_properties(self, req: Request, m: re.Match[str]) -> Response:
        kind = {"0-1": "contacts", "0-3": "deals"}.get(m.group(1), m.group(1))
        archived = self._bool(req, "archived")
        results = [] if archived else [p.json() for p in self.account.properties[kind].values()]
        return Response(200, {"results": results})

    def _new_property(self, body: dict[str, Any]) -> Property:
        return Property(
            name=body["name"],
            label=body["label"],
            type=body["type"],
            field_type=body["fieldType"],
            group=body["groupName"],
            description=str(body.get("description") or ""),
            options=stored_options(body.get("options") or ()),
            created_at=self._now(),
            display_order=int(body.get("displayOrder", -1)),
        )

    def create_properties(self, req: Request, m: re.Match[str]) -> Response:
        started = self._now()
        inputs = self._inputs(self._json(req), BATCH_MAX)
        for inp in inputs:
            problem = check_property_input(inp, self.account.groups)
            if problem:
                raise error(400, f"Invalid property definition: {problem}")
        names = [inp["name"] for inp in inputs]
        if len(set(names)) != len(names):
            raise error(400, "Invalid input: a property name appears twice in the batch")
        existing = self.account.properties["contacts"]
        results: list[Any] = []
        errors: list[dict[str, Any]] = []
        for inp in inputs:
            if inp["name"] in existing:
                errors.append(
                    item_error(
                        "OBJECT_ALREADY_EXISTS",
                        f"Property named '{inp['name']}' already exists.",
                        code="PROPERTY_NAME_ALREADY_EXISTS",
                        properties=[inp["name"]],
                    )
                )
                continue
            prop = existing[inp["name"]] = self._new_property(inp)
            results.append(prop.json())
        return self._batch(results, errors, 201, started)

    def create_property(self, req: Request, m: re.Match[str]) -> Response:
        body = self._json(req)
        problem = check_property_input(body, self.account.groups)
        if problem:
            raise error(400, f"Invalid property definition: {problem}")
        existing = self.account.properties["contacts"]
        if body["name"] in existing:
            raise error(409, f"Property named '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS")
        prop = existing[body["name"]] = self._new_property(body)
        return Response(201, prop.json())

    def update_property(self, req: Request, m: re.Match[str]) -> Response:
        prop = self.account.properties["contacts"].get(m.group(1))
        if prop is None:
            raise error(404, f"Property {m.group(1)} does not exist")
        body = self._json(req)
        if not isinstance(body, dict):
            raise error(400, "Invalid input: the body must be a PropertyUpdate object")
        if prop.hubspot_defined and ({"type", "fieldType", "options"} & set(body)):
            raise error(400, f"{prop.name} is defined by HubSpot; its type and options cannot change")
        kind, field_type = body.get("type", prop.type), body.get("fieldType", prop.field_type)
        problem = check_property_input(
            {
                "name": prop.name,
                "label": body.get("label", prop.label),
                "type": kind,
                "fieldType": field_type,
                "groupName": body.get("groupName", prop.group),
                "options": body.get("options", prop.options if kind == "enumeration" else None),
            },
            self.account.groups,
        )
        if problem:
            raise error(400, f"Invalid property update: {problem}")
        prop.type, prop.field_type = kind, field_type
        prop.label = str(body.get("label", prop.label))
        prop.group = str(body.get("groupName", prop.group))
        prop.description = str(body.get("description", prop.description))
        if "options" in body:
            prop.options = stored_options(body["options"])
        elif kind != "enumeration":
            prop.options = []
        return Response(200, prop.json())

    def get_groups(self, req: Request, m: re.Match[str]) -> Response:
        groups = [
            {**g, "displayOrder": g.get("displayOrder", -1), "archived": False}
            for g in self.account.groups.values()
        ]
        return Response(200, {"results": groups})

    def create_group(self, req: Request, m: re.Match[str]) -> Response:
        body = self._json(req)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("name"), str)
            or not isinstance(body.get("label"), str)
        ):
            raise error(400, "Invalid input: a property group needs 'name' and 'label' strings")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", body["name"]):
            raise error(
                400,
                f"group name {body['name']!r} must be lower case, start with a letter, use a-z, 0-9 and _",
            )
        if body["name"] in self.account.groups:
            raise error(
                409, f"A property group named '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS"
            )
        group = {
            "name": body["name"],
            "label": body["label"],
            "displayOrder": int(body.get("displayOrder", -1)),
        }
        self.account.groups[body["name"]] = group
        return Response(201, {**group, "archived": False})

    # -- lists ---------------------------------------------------------------------------

    def _list(self, list_id: str) -> HubList:
        found = self.account.lists.get(list_id)
        if found is None or found.deleted:
            raise error(404, f"List {list_id} does not exist.")
        return found

    def create_list(self, req: Request, m: re.Match[str]) -> Response:
        body = self._json(req)
        if not isinstance(body, dict):
            raise error(400, "Invalid input: the body must be a ListCreateRequest object")
        missing = [k for k in ("name", "objectTypeId", "processingType") if not isinstance(body.get(k), str)]
        if missing:
            raise error(400, f"Invalid input: missing required field(s) {', '.join(missing)}")
        name, kind = body["name"].strip(), body["processingType"]
        if not name:
            raise error(400, "Invalid input: list name must not be empty")
        if body["objectTypeId"] != "0-1":
            raise error(400, "the sandbox keeps contact lists (objectTypeId 0-1) only")
        if kind not in ("MANUAL", "DYNAMIC", "SNAPSHOT"):
            raise error(400, f"processingType must be MANUAL, DYNAMIC or SNAPSHOT, not {kind!r}")
        branch = body.get("filterBranch")
        if kind == "MANUAL" and branch is not None:
            raise error(400, "MANUAL lists take no filterBranch")
        if kind != "MANUAL":
            if branch is None:
                raise error(400, f"{kind} lists need a filterBranch")
            problem = check_filter_branch(branch, self.account.properties["contacts"])
            if problem:
                raise error(400, f"Invalid filterBranch: {problem}")
        if self.account.find_list_by_name(name) is not None:
            raise error(
                400,
                f"A list named '{name}' already exists; list names must be unique.",
                "VALIDATION_ERROR",
                subCategory="ILS.DUPLICATE_LIST_NAMES",
            )
        stamp = self._now()
        new = HubList(self.account.new_list_id(), name, kind, stamp, filter_branch=branch)
        if kind == "SNAPSHOT":  # filters evaluated once, then kept by hand
            new.members = {
                c: stamp for c in self.account.list_members(HubList("", "", "DYNAMIC", stamp, branch))
            }
            new.filter_branch = branch
        self.account.lists[new.id] = new
        return Response(200, {"list": self.account.list_json(new)})

    def get_lists(self, req: Request, m: re.Match[str]) -> Response:
        include = self._bool(req, "includeFilters")
        found = [self.account.lists.get(i) for i in self._names(req, "listIds")]
        lists = [
            self.account.list_json(lst, include_filters=include) for lst in found if lst and not lst.deleted
        ]
        return Response(200, {"lists": lists})

    def get_list(self, req: Request, m: re.Match[str]) -> Response:
        found = self._list(m.group(1))
        return Response(
            200, {"list": self.account.list_json(found, include_filters=self._bool(req, "includeFilters"))}
        )

    def get_list_by_name(self, req: Request, m: re.Match[str]) -> Response:
        if m.group(1) != "0-1":
            raise error(400, "the sandbox keeps contact lists (objectTypeId 0-1) only")
        found = self.account.find_list_by_name(m.group(2))
        if found is None:
            raise error(404, "List does not exist with the given name.")
        return Response(
            200, {"list": self.account.list_json(found, include_filters=self._bool(req, "includeFilters"))}
        )

    def remove_list(self, req: Request, m: re.Match[str]) -> Response:
        self._list(m.group(1)).deleted = True
        return Response(204)

    def change_members(self, req: Request, m: re.Match[str]) -> Response:
        target = self._list(m.group(1))
        body = self._json(req)
        keys = ("recordIdsToAdd", "recordIdsToRemove")
        if not isinstance(body, dict) or any(
            not isinstance(body.get(k), list) or not all(isinstance(i, str) for i in body[k]) for k in keys
        ):
            raise error(
                400, "Invalid input: recordIdsToAdd and recordIdsToRemove are both required lists of ids"
            )
        adds, removes = list(dict.fromkeys(body[keys[0]])), list(dict.fromkeys(body[keys[1]]))
        if len(adds) + len(removes) > self.sandbox.membership_max:
            raise error(400, f"Too many record ids: at most {self.sandbox.membership_max} per request")
        if set(adds) & set(removes):
            raise error(400, "Invalid input: a record id cannot be added and removed in one request")
        if target.processing_type == "DYNAMIC":
            raise error(
                400, f"List {target.id} is DYNAMIC; only MANUAL and SNAPSHOT lists take membership changes"
            )
        stamp = self._now()
        alive = {c.id for c in self.account.live(self.account.contacts)}
        missing = [i for i in (*adds, *removes) if i not in alive]
        added = [i for i in adds if i in alive and i not in target.members]
        removed = [i for i in removes if i in target.members and i in alive]
        for i in added:
            target.members[i] = stamp
        for i in removed:
            del target.members[i]
        if added or removed:
            target.updated_at = stamp
        return Response(
            200, {"recordsIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}
        )

    def get_members(self, req: Request, m: re.Match[str]) -> Response:
        target = self._list(m.group(1))
        limit = self._limit(req, 100, MEMBERSHIP_PAGE_MAX)
        if req.arg("before") is not None:
            raise error(400, "the sandbox pages memberships forwards only (after)")
        members = self.account.list_members(target)
        page, nxt = self._page(members, self._cursor(req.arg("after")), limit)
        stamp = target.updated_at or target.created_at
        results = [{"recordId": i, "membershipTimestamp": target.members.get(i, stamp)} for i in page]
        return Response(200, {"results": results, "total": len(members), **self._paging(req, nxt)})


class HubSpotSandbox:
    """The emulated portal, its HTTP server, and the "behind segsync's back" actions tests need.

    Extra keywords beyond the :class:`segsync.sandbox.Sandbox` protocol tune strictness:
    ``rate_limit`` (requests per 10 s, default 190), ``daily_limit``, ``scopes`` (None grants
    all; a set makes other calls answer 403 MISSING_SCOPES), ``retry_after_header`` (HubSpot's
    429s are not documented to carry Retry-After, so off by default), ``association_page_size``
    (contacts per deal per association page), ``membership_max`` (ids per add-and-remove; the
    real cap is not documented), ``whole_batch_validation`` (refuse a whole batch/update with
    400 when one input has a bad value, instead of a 207: which HubSpot does is not documented),
    ``account_id`` (the portal id; by default derived from the token).
    """

    platform: ClassVar[str] = "hubspot"
    seed_rules: ClassVar[SeedRules] = SEED_RULES

    def __init__(
        self,
        *,
        secret: str,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
        rate_limit: int = 190,
        daily_limit: int = 625_000,
        scopes: Iterable[str] | None = None,
        retry_after_header: bool = False,
        association_page_size: int = 100,
        membership_max: int = 1000,
        whole_batch_validation: bool = False,
        home_currency: str = "USD",
        managed_group: str = "segsync",
        wall_clock: Callable[[], dt.datetime] | None = None,
        account_id: str | None = None,
    ) -> None:
        self.secret = secret
        if account_id is not None and not (account_id.isdigit() and 0 < int(account_id) < 2**31):
            raise ValueError("a HubSpot portal id is a positive 32-bit integer")
        #: Headers sent on every answer, replacing the sandbox's own (tests send malformed ones).
        self.header_overrides: dict[str, str] = {}
        #: The portal id: derived from the token unless given (two tokens, two portals).
        self.account_id = account_id or derived_account_id(secret)
        self.rate_limit = rate_limit
        self.daily_limit = daily_limit
        self.scopes: frozenset[str] | None = frozenset(scopes) if scopes is not None else None
        self.retry_after_header = retry_after_header
        self.association_page_size = association_page_size
        self.membership_max = membership_max
        self.whole_batch_validation = whole_batch_validation
        self.wall_clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
        self.account = Account(home_currency=home_currency, managed_group=managed_group)
        self._server = HubSpotServer(self, port=port, traffic_log=traffic_log, faults=faults, clock=clock)
        self.server: EmulatorServer = self._server

    @property
    def base_url(self) -> str:
        return self.server.base

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def set_rate_limit(self, per_10s: int) -> None:
        with self.server.lock:
            self.rate_limit = per_10s
            self._server.configure_rates()

    # -- the portal's users, acting behind segsync's back ----------------------------------

    def seed(self, data: SeedData) -> None:
        with self.server.lock:
            self.account.seed(data, self.wall_clock())

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        with self.server.lock:
            contact = self.account.contacts.get(contact_id)
            if contact is None or contact.archived:
                raise KeyError(f"no live contact {contact_id!r} in the sandbox")
            deal = self.account.add_deal(
                self.account.new_id(),
                [contact_id],
                amount=format(amount, "f"),
                currency=self.account.home_currency,
                closedate=iso(closed_at if closed_at.tzinfo else closed_at.replace(tzinfo=dt.UTC)),
                stage="closedwon",
                now=self.wall_clock(),
                pipeline=HOME_PIPELINE,
            )
            return deal.id

    def associate(self, deal_id: str, contact_id: str) -> None:
        """Add one more contact to a deal (deals bought by several people)."""
        with self.server.lock:
            contacts = self.account.deals[deal_id].contacts
            if contact_id not in contacts:
                contacts.append(contact_id)

    def delete_contact(self, contact_id: str) -> None:
        """Archive the contact: gone from pages, lists and associations, as in HubSpot."""
        with self.server.lock:
            self.account.contacts[contact_id].archived = True
            for lst in self.account.lists.values():
                lst.members.pop(contact_id, None)

    def delete_list(self, list_id: str) -> None:
        with self.server.lock:
            self.account.lists[list_id].deleted = True

    def rename_list(self, list_id: str, name: str) -> None:
        with self.server.lock:
            self.account.lists[list_id].name = name

    def add_user_list(self, name: str, members: Iterable[str] = ()) -> str:
        """A MANUAL list someone made in HubSpot; not segsync's, so not in snapshots."""
        with self.server.lock:
            now = iso(self.wall_clock())
            new = HubList(self.account.new_list_id(), name, "MANUAL", now, managed=False)
            new.members.update(dict.fromkeys(members, now))
            self.account.lists[new.id] = new
            return new.id

    def list_member_ids(self, list_id: str) -> set[str]:
        """Members of a MANUAL list, as HubSpot stores them."""
        with self.server.lock:
            return set(self.account.lists[list_id].members)

    def add_user_property(
        self,
        name: str,
        type_: str,
        field_type: str,
        *,
        options: Sequence[str] = (),
        group: str = "contactinformation",
    ) -> None:
        """A contact property someone made in HubSpot, possibly clashing with a segsync name."""
        with self.server.lock:
            opts = [{"label": o, "value": o, "hidden": False} for o in options]
            problem = check_options(type_, opts or None)
            if problem:
                raise ValueError(problem)
            self.account.properties["contacts"][name] = Property(
                name,
                name,
                type_,
                field_type,
                group,
                options=stored_options(opts),
                created_at=iso(self.wall_clock()),
            )

    def contact_values(self, contact_id: str) -> dict[str, str]:
        with self.server.lock:
            return dict(self.account.contacts[contact_id].properties)

    def snapshot(self) -> dict[str, object]:
        with self.server.lock:
            return self.account.snapshot()
