"""A strict loopback emulator of the Brevo API v3 endpoints segsync uses.

brevo-python talks to it over real HTTP (``base_url`` = ``http://127.0.0.1:PORT/v3``). It
answers the way Brevo does and refuses what Brevo refuses:

* ``api-key`` header auth (401 ``unauthorized`` otherwise; OAuth calls are counted and refused);
* the success codes the spec gives (201 creates and list changes, 204 updates, 202 imports),
  Brevo's error body ``{"code", "message"}``;
* page maxima per endpoint (contacts 1000, list members 500, lists and folders 50, orders
  100, deals 50 — unconfirmed, configurable), unknown query parameters refused;
* membership changes of at most 150 ids, by exactly one of ``emails``/``ids``/``extIds``;
* imports: 202 ``{processId}``, the process moves ``queued`` → ``in_process`` → ``completed``
  one step per status poll (or by itself after a while), unknown attributes and values of the
  wrong type are ignored as Brevo does, unknown emails become new contacts, ``listIds`` or
  ``newList`` is required, bodies over 10 MB are refused;
* rate buckets per tier with ``x-sib-ratelimit-limit/-remaining/-reset`` on every answer and
  429 when a window is full (no Retry-After unless asked: Brevo is not known to send one);
* ``modifiedAt`` moves when attributes or list memberships change;
* one contact per email (case-insensitive): a create or an ``EMAIL`` change to an address
  another contact has is 400 ``duplicate_parameter``; an import applies the first row of an
  email and lists the later ones in the report's ``duplicate_email_id`` (which row Brevo keeps
  is unconfirmed); a seed with two contacts on one email is refused.

Where Brevo's behaviour is not confirmed the stricter choice is made and can be relaxed with a
constructor argument. Time comes from the injected clock, so tests cross hourly windows
instantly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
    check_seed,
)
from segsync.sync.runner import Clock, SystemClock
from segsync_brevo.config import RATE_TIERS, BrevoSettings, bucket_for_path
from segsync_brevo.mapping import NEUTRAL_ATTRIBUTES, parse_datetime, text_of, to_decimal

MAX_IMPORT_BYTES = 10 * 1024 * 1024
MEMBERSHIP_MAX = 150
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ATTR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CODES = {
    400: "invalid_parameter",
    401: "unauthorized",
    402: "not_enough_credits",
    403: "permission_denied",
    404: "document_not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    422: "unprocessable_entity",
}
_GATEWAY_PAGE = (
    "<html><head><title>{status} {text}</title></head><body><center><h1>{status} {text}</h1></center>"
    "<hr><center>cloudflare</center></body></html>"
)

_DEFAULTS = BrevoSettings()
#: Attributes every seeded account has (Brevo's defaults plus the seed columns).
_SEED_ATTRIBUTES = {
    "FIRSTNAME": "text",
    "LASTNAME": "text",
    "SMS": "text",
    "COUNTRY": "text",
    "CITY": "text",
    "AGE": "float",
    "JOB_TITLE": "text",
    "COMPANY_SIZE": "text",
}
# Seed CSV columns land in the attributes the plugin reads by default.
_SEED_COLUMNS = NEUTRAL_ATTRIBUTES


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _bad(message: str, code: str = "invalid_parameter", status: int = 400) -> HttpError:
    return HttpError(status, {"code": code, "message": message})


_DUPLICATE_EMAIL = {"duplicate_identifiers": ["email"]}


def _duplicate_email(action: str) -> HttpError:
    """Brevo's answer when an email belongs to another contact (crm-api-facts §2.2, pitfall 11)."""
    message = f"Unable to {action} contact, email is already associated with another Contact"
    return HttpError(400, {"code": "duplicate_parameter", "message": message, "metadata": _DUPLICATE_EMAIL})


def _missing(what: str) -> HttpError:
    return HttpError(404, {"code": "document_not_found", "message": f"{what} does not exist"})


@dataclass
class _Contact:
    id: int
    email: str | None
    attributes: dict[str, Any]
    created: dt.datetime
    modified: dt.datetime
    lists: set[int] = field(default_factory=set)


@dataclass
class _Attribute:
    name: str
    category: str
    type: str | None
    enumeration: list[dict[str, Any]] | None = None
    managed: bool = True  # created through the API (segsync's), not seeded


@dataclass
class _List:
    id: int
    name: str
    folder_id: int
    created: dt.datetime


@dataclass
class _Deal:
    id: str
    attributes: dict[str, Any]
    contacts: list[int]
    created: dt.datetime
    updated: dt.datetime  # last_updated_date, kept parsed for sorting and filtering


@dataclass
class _Order:
    id: str
    contact_id: int | None
    amount: Any
    status: str
    created: dt.datetime
    updated: dt.datetime
    email: str | None = None  # orders a shop sent with an email only


@dataclass
class _Process:
    id: int
    started: float
    payload: dict[str, Any]
    polls: int = 0
    done: bool = False
    invalid_emails: list[str] = field(default_factory=list)
    duplicate_emails: list[str] = field(default_factory=list)


class _Server(EmulatorServer):
    """The Brevo wire conventions on the shared emulator base: auth, errors, rate headers."""

    def __init__(self, sandbox: BrevoSandbox, **kw: Any) -> None:
        super().__init__(**kw)
        self.sandbox = sandbox
        self._rate: tuple[int, int, float] | None = None

    def authenticate(self, req: Request) -> Response | None:
        if not req.path.startswith("/v3/"):
            # e.g. the SDK's OAuth token call when BREVO_CLIENT_ID/SECRET leak in
            self.sandbox.foreign_calls += 1
            return Response(401, self.error_body(401, "OAuth is not enabled for this account"))
        if req.header("api-key") != self.sandbox.secret:
            return Response(401, self.error_body(401, "Key not found"))
        return None

    def error_body(self, status: int, message: str) -> Any:
        return {"code": _CODES.get(status, "bad_request"), "message": message}

    def _headers(self, limit: int, remaining: int, reset: float) -> dict[str, str]:
        return {
            "x-sib-ratelimit-limit": str(limit),
            "x-sib-ratelimit-remaining": str(max(0, remaining)),
            "x-sib-ratelimit-reset": str(max(1, math.ceil(reset))),
        }

    def rate_limited(self, req: Request) -> Response | None:
        bucket = bucket_for_path(req.path)
        self.sandbox.calls_by_bucket[bucket] = self.sandbox.calls_by_bucket.get(bucket, 0) + 1
        allowed, limit, remaining, reset = self.rates.take(bucket)
        self._rate = (limit, remaining, reset) if limit else None
        if allowed:
            return None
        self.sandbox.rate_limited += 1
        headers = self._headers(limit, 0, reset)
        if self.sandbox.retry_after_on_429:
            headers["Retry-After"] = str(max(1, math.ceil(reset)))
        return Response(429, {"code": "too_many_requests", "message": "Too many requests"}, headers)

    def decorate(self, req: Request, resp: Response) -> None:
        if self._rate is not None:
            resp.headers.update(self._headers(*self._rate))
            self._rate = None

    def fault_response(self, kind: str, req: Request) -> Response:
        status = int(kind)
        if status == 429:
            # A burst limit: the window frees within a second.
            return Response(
                429, {"code": "too_many_requests", "message": "Too many requests"}, self._headers(10, 0, 1)
            )
        if status in (502, 503):
            text = "Bad Gateway" if status == 502 else "Service Temporarily Unavailable"
            page = _GATEWAY_PAGE.format(status=status, text=text).encode()
            return Response(status, page, {"Content-Type": "text/html"})
        return Response(status, {"code": "internal_error", "message": "Internal server error"})


class BrevoSandbox:
    """The Brevo account emulator (implements :class:`segsync.sandbox.Sandbox`)."""

    platform: ClassVar[str] = "brevo"
    seed_rules: ClassVar[SeedRules] = SeedRules("Brevo", integer_contact_ids=True)

    def __init__(
        self,
        *,
        secret: str,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
        rate_tier: str = "general",
        other_per_hour: int | None = None,
        deals_page_max: int = 50,
        retry_after_on_429: bool = False,
        import_step_seconds: float = 10.0,
        require_import_list: bool = True,
        account_id: str | None = None,
    ) -> None:
        if rate_tier not in RATE_TIERS:
            raise ValueError(f"rate_tier must be one of {', '.join(RATE_TIERS)}")
        if account_id is not None and not re.fullmatch(r"[0-9a-f]{24}", account_id):
            raise ValueError("a Brevo organization id is 24 lower-case hex digits")
        self.secret = secret
        #: ``organization_id``: derived from the key unless given (two keys, two accounts).
        self.account_id = account_id or hashlib.sha256(secret.encode()).hexdigest()[:24]
        self.clock: Clock = clock or SystemClock()
        self.server: EmulatorServer = _Server(
            self, port=port, traffic_log=traffic_log, faults=faults, clock=self.clock
        )
        for bucket, windows in RATE_TIERS[rate_tier].items():
            self.server.rates.configure(bucket, windows)
        if other_per_hour is not None:
            self.server.rates.configure("other", [(other_per_hour, 3600.0)])
        self.deals_page_max = deals_page_max
        self.retry_after_on_429 = retry_after_on_429
        self.import_step_seconds = import_step_seconds
        self.require_import_list = require_import_list
        # Wall time follows the injected clock, so a test that waits an hour sees an hour pass.
        self._wall0 = dt.datetime.now(dt.UTC)
        self._mono0 = self.clock.now()
        self.contacts: dict[int, _Contact] = {}
        self._order: list[int] = []  # contact ids by creation
        self._emails: dict[str, int] = {}
        self.attributes: dict[str, _Attribute] = {}
        self.folders: dict[int, str] = {}
        self.lists: dict[int, _List] = {}
        self.members: dict[int, set[int]] = {}
        self.deals: dict[str, _Deal] = {}
        self.orders: dict[str, _Order] = {}
        self.processes: dict[int, _Process] = {}
        self.pipeline_id = "64f0c0ffee0000000000a001"
        self.stages = {"open": "stage-new", "won": "stage-won", "lost": "stage-lost"}
        self._next = {"contact": 1, "folder": 1, "list": 1, "process": 1, "deal": 1}
        # Counters tests assert on.
        self.rate_limited = 0
        self.foreign_calls = 0
        self.calls_by_bucket: dict[str, int] = {}
        for name, kind in _SEED_ATTRIBUTES.items():
            self.attributes[name] = _Attribute(name, "normal", kind, managed=False)
        self._register_routes()

    # -- Sandbox protocol -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.server.base + "/v3"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def now(self) -> dt.datetime:
        return self._wall0 + dt.timedelta(seconds=self.clock.now() - self._mono0)

    def seed(self, data: SeedData) -> None:
        with self.server.lock:
            known = {str(i) for i in self.contacts}
            emails = {e: str(i) for e, i in self._emails.items()}
            check_seed(
                data, self.seed_rules, known_contacts=known, known_deals=self.deals, known_emails=emails
            )
            for c in data.contacts:
                created = parse_datetime(c.createdate) or self.now()
                attrs: dict[str, Any] = {}
                for column, name in _SEED_COLUMNS.items():
                    value = getattr(c, column)
                    if value:
                        number = to_decimal(value) if name == "AGE" else None
                        attrs[name] = float(number) if number is not None else value
                self._add_contact(int(c.id), c.email or None, attrs, created)
            for p in data.purchases:
                contact = int(p.contact_id) if p.contact_id.isdigit() else None
                closed = parse_datetime(p.closedate)
                # seeded deals were created (and last changed) when they closed
                deal = self._add_deal(p.deal_id, contact, p.amount, closed, p.stage, created=closed)
                if p.currency:
                    self.deals[deal].attributes["deal_currency"] = p.currency

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        with self.server.lock:
            return self._add_deal(None, int(contact_id), str(amount), closed_at, "won")

    def delete_contact(self, contact_id: str) -> None:
        with self.server.lock:
            self._delete_contact(int(contact_id))

    def delete_list(self, list_id: str) -> None:
        with self.server.lock:
            self._delete_list(int(list_id))

    def snapshot(self) -> dict[str, object]:
        with self.server.lock:
            self._settle()
            managed = {n: a for n, a in self.attributes.items() if a.managed}
            fields: dict[str, dict[str, str]] = {}
            for c in self.contacts.values():
                values = {}
                for name, attr in managed.items():
                    shown = self._display(attr, c.attributes.get(name))
                    if shown is not None:
                        values[name.lower()] = shown
                if values:
                    fields[str(c.id)] = values
            segsync_lists = [
                lst
                for lst in self.lists.values()
                if self.folders.get(lst.folder_id) == _DEFAULTS.folder_name
                and lst.name != _DEFAULTS.import_list_name
            ]
            return {
                "fields": fields,
                "lists": {lst.name: sorted(str(i) for i in self.members[lst.id]) for lst in segsync_lists},
                "field_defs": sorted(n.lower() for n in managed),
                "list_names": sorted(lst.name for lst in segsync_lists),
            }

    # -- helpers for tests and the demo -----------------------------------------------------

    def add_contact(self, email: str | None, attributes: dict[str, Any] | None = None) -> str:
        with self.server.lock:
            cid = self._next["contact"]
            self._add_contact(cid, email, dict(attributes or {}), self.now())
            return str(cid)

    def set_deal_stage(self, deal_id: str, stage: str) -> None:
        with self.server.lock:
            deal = self.deals[deal_id]
            deal.updated = self.now()
            now = _ts(deal.updated)
            deal.attributes.update(deal_stage=self.stages[stage], stage_updated_at=now, last_updated_date=now)
            order = self.orders.get(deal_id)
            if order is not None:
                order.status = {"won": "completed", "lost": "cancelled", "open": "pending"}[stage]
                order.updated = self.now()

    def add_order(self, email: str, amount: Decimal, status: str = "completed") -> str:
        """An eCommerce order that names its buyer by email only, as shops often send them."""
        with self.server.lock:
            number = self._next["deal"]
            self._next["deal"] += 1
            order_id = f"order-{number}"
            now = self.now()
            self.orders[order_id] = _Order(order_id, None, float(amount), status, now, now, email=email)
            return order_id

    def add_attribute(self, name: str, category: str, type_: str | None) -> None:
        """An attribute a user made (not segsync's), e.g. to provoke a type conflict."""
        with self.server.lock:
            self.attributes[name] = _Attribute(name, category, type_, managed=False)

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self.server.lock:
            self._settle()
            return self._contact_json(self.contacts[int(contact_id)])

    def add_user_list(self, name: str, members: Iterable[str] = ()) -> str:
        """A list someone made in Brevo, in a folder of their own; not segsync's."""
        with self.server.lock:
            folder = self._next["folder"]
            self._next["folder"] += 1
            self.folders[folder] = "Your first folder"
            lid = self._new_list(name, folder)
            self.members[lid].update(int(m) for m in members)
            return str(lid)

    def list_member_ids(self, list_id: str) -> set[str]:
        with self.server.lock:
            return {str(i) for i in self.members[int(list_id)]}

    @property
    def faults_injected(self) -> dict[str, int]:
        return self.server.faults_injected

    # -- state changes ----------------------------------------------------------------------

    def _add_contact(
        self, cid: int, email: str | None, attrs: dict[str, Any], created: dt.datetime
    ) -> _Contact:
        if email and email.casefold() in self._emails:  # requests are refused before this
            raise ValueError(
                f"Brevo keeps one contact per email; contact {self._emails[email.casefold()]} has it"
            )
        contact = _Contact(cid, email, attrs, created, created)
        self.contacts[cid] = contact
        self._order.append(cid)
        if email:
            self._emails[email.casefold()] = cid
        self._next["contact"] = max(self._next["contact"], cid + 1)
        return contact

    def _delete_contact(self, cid: int) -> None:
        contact = self.contacts.pop(cid)
        self._order.remove(cid)
        if contact.email:
            self._emails.pop(contact.email.casefold(), None)
        for lid in contact.lists:
            self.members[lid].discard(cid)
        for deal in self.deals.values():
            if cid in deal.contacts:
                deal.contacts.remove(cid)

    def _delete_list(self, lid: int) -> None:
        self.lists.pop(lid)
        now = self.now()
        for cid in self.members.pop(lid):
            contact = self.contacts[cid]
            contact.lists.discard(lid)
            contact.modified = now

    def _add_deal(
        self,
        deal_id: str | None,
        contact: int | None,
        amount: str,
        closed: dt.datetime | None,
        stage: str,
        *,
        created: dt.datetime | None = None,
    ) -> str:
        """A deal (and the matching eCommerce order, same id); new ones get Brevo-like ids."""
        number = self._next["deal"]
        self._next["deal"] += 1
        deal_id = deal_id or f"{0x64F0 << 80 | number:024x}"  # 24 hex digits, like Brevo's object ids
        if deal_id in self.deals:
            raise ValueError(f"deal id {deal_id!r} appears twice")
        created = created or self.now()
        attrs: dict[str, Any] = {
            "deal_name": f"Order {deal_id}",
            "pipeline": self.pipeline_id,
            "deal_stage": self.stages[stage],
            "created_at": _ts(created),
            "last_updated_date": _ts(created),
            "stage_updated_at": _ts(created),
        }
        if amount:
            number_amount = to_decimal(amount)
            attrs["amount"] = float(number_amount) if number_amount is not None else amount
        if closed is not None:
            attrs["close_date"] = _ts(closed)
        # No contact, or one not in the account: served with no linked contact, as Brevo does.
        linked = [contact] if contact is not None and contact in self.contacts else []
        attrs["number_of_contacts"] = len(linked)
        self.deals[deal_id] = _Deal(deal_id, attrs, linked, created, created)
        status = {"won": "completed", "lost": "cancelled", "open": "pending"}[stage]
        amount_value = attrs.get("amount")
        self.orders[deal_id] = _Order(
            deal_id, linked[0] if linked else None, amount_value, status, created, created
        )
        return deal_id

    def _touch(self, contact: _Contact) -> None:
        contact.modified = self.now()

    # -- JSON shapes --------------------------------------------------------------------------

    def _contact_json(self, c: _Contact) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": c.id,
            "emailBlacklisted": False,
            "smsBlacklisted": False,
            "createdAt": _ts(c.created),
            "modifiedAt": _ts(c.modified),
            "listIds": sorted(c.lists),
            "attributes": dict(c.attributes),
        }
        if c.email:
            out["email"] = c.email
        return out

    def _list_json(self, lst: _List, *, folder: bool) -> dict[str, Any]:
        size = len(self.members[lst.id])
        out: dict[str, Any] = {
            "id": lst.id,
            "name": lst.name,
            "totalBlacklisted": 0,
            "totalSubscribers": size,
            "uniqueSubscribers": size,
        }
        if folder:
            out["folderId"] = lst.folder_id
        return out

    def _display(self, attr: _Attribute, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if attr.category == "category":
            labels = {e["value"]: e["label"] for e in attr.enumeration or ()}
            return str(labels.get(value, value))
        return text_of(value)

    # -- request plumbing ---------------------------------------------------------------------

    def _register_routes(self) -> None:
        r: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"/v3/account", self._get_account),
            ("GET", r"/v3/contacts", self._get_contacts),
            ("POST", r"/v3/contacts", self._create_contact),
            ("GET", r"/v3/contacts/attributes", self._get_attributes),
            ("POST", r"/v3/contacts/attributes/(?P<category>[^/]+)/(?P<name>[^/]+)", self._create_attribute),
            ("PUT", r"/v3/contacts/attributes/(?P<category>[^/]+)/(?P<name>[^/]+)", self._update_attribute),
            ("GET", r"/v3/contacts/folders", self._get_folders),
            ("POST", r"/v3/contacts/folders", self._create_folder),
            ("GET", r"/v3/contacts/folders/(?P<folder>\d+)/lists", self._get_folder_lists),
            ("GET", r"/v3/contacts/lists", self._get_lists),
            ("POST", r"/v3/contacts/lists", self._create_list),
            ("GET", r"/v3/contacts/lists/(?P<list>\d+)", self._get_list),
            ("DELETE", r"/v3/contacts/lists/(?P<list>\d+)", self._remove_list),
            ("GET", r"/v3/contacts/lists/(?P<list>\d+)/contacts", self._get_list_contacts),
            ("POST", r"/v3/contacts/lists/(?P<list>\d+)/contacts/add", self._add_to_list),
            ("POST", r"/v3/contacts/lists/(?P<list>\d+)/contacts/remove", self._remove_from_list),
            ("POST", r"/v3/contacts/import", self._import),
            ("GET", r"/v3/contacts/(?P<ident>.+)", self._get_contact),
            ("PUT", r"/v3/contacts/(?P<ident>.+)", self._update_contact),
            ("DELETE", r"/v3/contacts/(?P<ident>.+)", self._remove_contact),
            ("GET", r"/v3/processes/(?P<process>\d+)", self._get_process),
            ("GET", r"/v3/crm/deals", self._get_deals),
            ("GET", r"/v3/crm/pipeline/details/all", self._get_pipelines),
            ("GET", r"/v3/crm/attributes/deals", self._get_deal_attributes),
            ("GET", r"/v3/orders", self._get_orders),
        ]
        for method, pattern, handler in r:
            self.server.route(method, pattern, self._settled(handler))

    def _settled(self, handler: Callable[[Request, re.Match[str]], Response]) -> Callable[..., Response]:
        def run(req: Request, m: re.Match[str]) -> Response:
            self._settle()
            return handler(req, m)

        return run

    @staticmethod
    def _only(req: Request, allowed: Iterable[str]) -> None:
        unknown = sorted(set(req.query) - set(allowed))
        if unknown:
            raise _bad(f"unknown query parameter {unknown[0]}")

    @staticmethod
    def _int(req: Request, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        raw = req.arg(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _bad(f"{name} must be an integer") from None
        if value < low:
            raise _bad(f"{name} must be at least {low}", "out_of_range")
        if high is not None and value > high:
            raise _bad(f"{name} must be at most {high}", "out_of_range")
        return value

    @staticmethod
    def _since(req: Request, name: str) -> dt.datetime | None:
        raw = req.arg(name)
        if raw is None:
            return None
        parsed = parse_datetime(raw)
        if parsed is None:
            raise _bad(f"{name} must be a UTC date-time YYYY-MM-DDTHH:mm:ss.SSSZ")
        return parsed

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        body = req.json()
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        return body

    @staticmethod
    def _sorted(items: list[Any], req: Request) -> list[Any]:
        sort = req.arg("sort", "desc")
        if sort not in ("asc", "desc"):
            raise _bad("sort must be asc or desc")
        return items if sort == "asc" else list(reversed(items))

    def _page(self, req: Request, items: list[Any], *, default: int, high: int) -> list[Any]:
        limit = self._int(req, "limit", default, high=high)
        offset = self._int(req, "offset", 0)
        return self._sorted(items, req)[offset : offset + limit]

    # -- account ------------------------------------------------------------------------------

    def _get_account(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        return Response(
            200,
            {
                "organization_id": self.account_id,
                "user_id": int(self.account_id[:6], 16),
                "enterprise": False,
                "email": "owner@example.com",
                "firstName": "Sandbox",
                "lastName": "Owner",
                "companyName": "segsync sandbox",
                "address": {
                    "street": "1 Loopback Way",
                    "city": "Localhost",
                    "zipCode": "00000",
                    "country": "FR",
                },
                "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
                "relay": {
                    "enabled": False,
                    "data": {"userName": "owner@example.com", "relay": "smtp-relay.example.com", "port": 587},
                },
            },
        )

    # -- contacts -----------------------------------------------------------------------------

    def _filtered_contacts(self, req: Request, ids: Iterable[int]) -> list[_Contact]:
        modified = self._since(req, "modifiedSince")
        created = self._since(req, "createdSince")
        out = []
        for cid in ids:
            c = self.contacts[cid]
            if modified is not None and c.modified < modified:
                continue
            if created is not None and c.created < created:
                continue
            out.append(c)
        return out

    def _get_contacts(self, req: Request, m: re.Match[str]) -> Response:
        self._only(
            req,
            (
                "limit",
                "offset",
                "modifiedSince",
                "createdSince",
                "sort",
                "ids",
                "listIds",
                "segmentId",
                "filter",
            ),
        )
        if req.arg("segmentId") is not None or req.arg("filter") is not None:
            raise _bad("segmentId and filter are not emulated by the segsync sandbox")
        ids = list(self._order)
        if req.args("ids"):
            wanted = [self._int_value(v, "ids") for v in req.args("ids")]
            if len(wanted) > 20:
                raise _bad("ids accepts at most 20 contact ids", "out_of_range")
            ids = [i for i in ids if i in set(wanted)]
        if req.args("listIds"):
            lists = {self._int_value(v, "listIds") for v in req.args("listIds")}
            ids = [i for i in ids if self.contacts[i].lists & lists]
        matching = self._filtered_contacts(req, ids)
        page = self._page(req, matching, default=50, high=1000)
        return Response(200, {"contacts": [self._contact_json(c) for c in page], "count": len(matching)})

    @staticmethod
    def _int_value(raw: str, name: str) -> int:
        if not raw.isdigit():
            raise _bad(f"{name} must be integers")
        return int(raw)

    def _identify(self, req: Request, ident: str) -> _Contact:
        kind = req.arg("identifierType")
        if kind not in (None, "email_id", "contact_id"):
            raise _bad(f"identifierType {kind} is not emulated by the segsync sandbox")
        if kind == "contact_id" or (kind is None and ident.isdigit()):
            if not ident.isdigit():
                raise _bad("a contact_id identifier must be an integer")
            contact = self.contacts.get(int(ident))
        elif kind == "email_id" or "@" in ident:
            cid = self._emails.get(ident.casefold())
            contact = self.contacts.get(cid) if cid is not None else None
        else:
            raise _bad("identifier must be an email address or a contact id")
        if contact is None:
            raise _missing("Contact")
        return contact

    def _get_contact(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("identifierType", "startDate", "endDate"))
        contact = self._identify(req, m["ident"])
        return Response(200, {**self._contact_json(contact), "statistics": {}})

    def _create_contact(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        body = self._body(req)
        names = self._contact_body(body, {"email", "updateEnabled", "smtpBlacklistSender"})
        names.pop("EMAIL", None)
        email = body.get("email")
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            raise _bad("email must be an email address (the segsync sandbox creates contacts by email)")
        cid = self._emails.get(email.casefold())
        if cid is None:
            contact = self._add_contact(self._next["contact"], email, {}, self.now())
        elif body.get("updateEnabled"):
            contact = self.contacts[cid]
        else:
            raise _duplicate_email("create")
        self._apply_contact(contact, names, body)
        return Response(201, {"id": contact.id}) if cid is None else Response(204)

    def _update_contact(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("identifierType",))
        contact = self._identify(req, m["ident"])
        body = self._body(req)
        names = self._contact_body(body, set())
        email = names.pop("EMAIL", None)  # the spec's way to change a contact's email
        if email is not None:
            if not isinstance(email, str) or not _EMAIL.fullmatch(email):
                raise _bad("EMAIL must be an email address")
            if self._emails.get(email.casefold(), contact.id) != contact.id:
                raise _duplicate_email("update")
        self._apply_contact(contact, names, body)
        if email is not None:
            if contact.email:
                self._emails.pop(contact.email.casefold(), None)
            contact.email = email
            self._emails[email.casefold()] = contact.id
        return Response(204)

    def _contact_body(self, body: dict[str, Any], extra: set[str]) -> dict[str, Any]:
        """The attributes a create or update sets, upper-cased; unknown fields, attributes and
        lists are refused before anything changes."""
        allowed = {"attributes", "emailBlacklisted", "smsBlacklisted", "listIds", "unlinkListIds", "ext_id"}
        unknown = set(body) - allowed - extra
        if unknown:
            raise _bad(f"unknown body field {sorted(unknown)[0]}")
        values = body.get("attributes") or {}
        if not isinstance(values, dict):
            raise _bad("attributes must be an object")
        names = {k.upper(): v for k, v in values.items()}
        missing = sorted(n for n in names if n not in self.attributes and n != "EMAIL")
        if missing:
            raise _bad(f"attribute {missing[0]} does not exist in this account")
        if any(lid not in self.lists for key in ("listIds", "unlinkListIds") for lid in body.get(key) or ()):
            raise _missing("List ID")
        return names

    def _apply_contact(self, contact: _Contact, names: dict[str, Any], body: dict[str, Any]) -> None:
        for name, value in names.items():
            # An empty string clears (unconfirmed on Brevo; segsync reads clears back).
            self._set_attribute(contact, self.attributes[name], value, erase=True)
        for key, add in (("listIds", True), ("unlinkListIds", False)):
            for lid in body.get(key) or ():
                (self.members[lid].add if add else self.members[lid].discard)(contact.id)
                (contact.lists.add if add else contact.lists.discard)(lid)
        self._touch(contact)

    def _remove_contact(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("identifierType",))
        self._delete_contact(self._identify(req, m["ident"]).id)
        return Response(204)

    # -- attributes ---------------------------------------------------------------------------

    def _get_attributes(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        out = []
        for attr in self.attributes.values():
            item: dict[str, Any] = {"name": attr.name, "category": attr.category}
            if attr.category == "category":
                # the spec's example lists category attributes with type "text"
                item["type"] = "text"
                item["enumeration"] = [dict(e) for e in attr.enumeration or ()]
            elif attr.type is not None:
                item["type"] = attr.type
            out.append(item)
        return Response(200, {"attributes": out})

    @staticmethod
    def _enumeration(body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get("enumeration")
        if not isinstance(items, list) or not items:
            raise _bad("a category attribute needs a non-empty enumeration", "missing_parameter")
        seen: set[int] = set()
        out = []
        for item in items:
            if not isinstance(item, dict) or set(item) != {"value", "label"}:
                raise _bad("each enumeration item is exactly {value, label}")
            value, label = item["value"], item["label"]
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad("enumeration values must be integers")
            if not isinstance(label, str) or not label.strip() or len(label) > 200:
                raise _bad("enumeration labels must be 1 to 200 characters")
            if value in seen:
                raise _bad(f"enumeration value {value} appears twice", "duplicate_parameter")
            seen.add(value)
            out.append({"value": value, "label": label})
        return out

    def _create_attribute(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        category, name = m["category"], m["name"]
        body = self._body(req)
        if category not in ("normal", "transactional", "category", "calculated", "global"):
            raise _bad(f"unknown attribute category {category}")
        if not _ATTR_NAME.fullmatch(name):
            raise _bad("attribute names are letters, digits and underscores, starting with a letter")
        name = name.upper()
        if name in self.attributes:
            raise _bad(f"attribute {name} already exists", "duplicate_parameter")
        unknown = set(body) - {"type", "enumeration", "multiCategoryOptions", "value", "isRecurring"}
        if unknown:
            raise _bad(f"unknown body field {sorted(unknown)[0]}")
        type_ = body.get("type")
        enumeration = None
        if category == "category":
            if type_ not in (None, "category") or set(body) - {"type", "enumeration"}:
                raise _bad("a category attribute takes type category and an enumeration only")
            enumeration = self._enumeration(body)
            type_ = "category"
        elif category in ("calculated", "global"):
            if not isinstance(body.get("value"), str) or "type" in body or "enumeration" in body:
                raise _bad(f"a {category} attribute takes a value formula only", "missing_parameter")
        else:
            allowed = {"text", "date", "float", "boolean"} | (
                {"multiple-choice", "user"} if category == "normal" else {"id"}
            )
            if type_ not in allowed:
                raise _bad(f"type must be one of {', '.join(sorted(allowed))} for a {category} attribute")
            if "enumeration" in body:
                raise _bad("enumeration is only for category attributes")
        self.attributes[name] = _Attribute(name, category, type_, enumeration)
        return Response(201)

    def _update_attribute(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        category, name = m["category"], m["name"].upper()
        attr = self.attributes.get(name)
        if attr is None or attr.category != category:
            raise _missing(f"Attribute {category}/{name}")
        body = self._body(req)
        if category == "category":
            if set(body) != {"enumeration"}:
                raise _bad("updating a category attribute takes an enumeration only")
            attr.enumeration = self._enumeration(body)
        else:
            raise _bad(f"the segsync sandbox only updates category attributes, not {category}")
        return Response(204)

    # -- folders and lists ---------------------------------------------------------------------

    def _get_folders(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("limit", "offset", "sort"))
        folders = sorted(self.folders.items())
        page = self._page(req, folders, default=10, high=50)
        out = []
        for fid, name in page:
            size = len(
                {c for lst in self.lists.values() if lst.folder_id == fid for c in self.members[lst.id]}
            )
            out.append(
                {
                    "id": fid,
                    "name": name,
                    "totalBlacklisted": 0,
                    "totalSubscribers": size,
                    "uniqueSubscribers": size,
                }
            )
        return Response(200, {"folders": out, "count": len(folders)})

    def _create_folder(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        body = self._body(req)
        name = body.get("name")
        if set(body) != {"name"} or not isinstance(name, str) or not name.strip():
            raise _bad("a folder needs a name", "missing_parameter")
        fid = self._next["folder"]
        self._next["folder"] += 1
        self.folders[fid] = name
        return Response(201, {"id": fid})

    def _get_folder_lists(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("limit", "offset", "sort"))
        fid = int(m["folder"])
        if fid not in self.folders:
            raise _missing("Folder")
        lists = [lst for lst in self.lists.values() if lst.folder_id == fid]
        page = self._page(req, lists, default=10, high=50)
        return Response(
            200, {"lists": [self._list_json(lst, folder=False) for lst in page], "count": len(lists)}
        )

    def _get_lists(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("limit", "offset", "sort"))
        lists = list(self.lists.values())
        page = self._page(req, lists, default=10, high=50)
        return Response(
            200, {"lists": [self._list_json(lst, folder=True) for lst in page], "count": len(lists)}
        )

    def _create_list(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        body = self._body(req)
        name, folder = body.get("name"), body.get("folderId")
        if set(body) != {"name", "folderId"} or not isinstance(name, str) or not name.strip():
            raise _bad("a list needs a name and a folderId", "missing_parameter")
        if isinstance(folder, bool) or not isinstance(folder, int) or folder not in self.folders:
            raise _bad("folderId does not name an existing folder")
        lid = self._new_list(name, folder)
        return Response(201, {"id": lid})

    def _new_list(self, name: str, folder: int) -> int:
        lid = self._next["list"]
        self._next["list"] += 1
        self.lists[lid] = _List(lid, name, folder, self.now())
        self.members[lid] = set()
        return lid

    def _list(self, m: re.Match[str]) -> _List:
        lst = self.lists.get(int(m["list"]))
        if lst is None:
            raise _missing("List ID")
        return lst

    def _get_list(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("startDate", "endDate"))
        lst = self._list(m)
        body = self._list_json(lst, folder=True) | {"createdAt": _ts(lst.created), "dynamicList": False}
        return Response(200, body)

    def _remove_list(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        self._delete_list(self._list(m).id)
        return Response(204)

    def _get_list_contacts(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("modifiedSince", "limit", "offset", "sort"))
        lst = self._list(m)
        members = self.members[lst.id]
        matching = self._filtered_contacts(req, [i for i in self._order if i in members])
        page = self._page(req, matching, default=50, high=500)
        return Response(200, {"contacts": [self._contact_json(c) for c in page], "count": len(matching)})

    def _membership_targets(self, body: dict[str, Any], *, allow_all: bool) -> tuple[str, list[Any]]:
        keys = [k for k in ("emails", "ids", "extIds") if k in body]
        if allow_all and body.get("all") is True and not keys and set(body) == {"all"}:
            return "all", []
        if len(keys) != 1 or set(body) != set(keys):
            raise _bad("send exactly one of emails, ids or extIds")
        key = keys[0]
        values = body[key]
        if not isinstance(values, list) or not values:
            raise _bad(f"{key} must be a non-empty array", "missing_parameter")
        if len(values) > MEMBERSHIP_MAX:
            raise _bad(f"{key} accepts at most {MEMBERSHIP_MAX} items per request", "out_of_range")
        if key == "ids" and any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise _bad("ids must be integers")
        if key != "ids" and any(not isinstance(v, str) for v in values):
            raise _bad(f"{key} must be strings")
        if key == "extIds":
            raise _bad("extIds are not emulated by the segsync sandbox")
        return key, values

    def _resolve(self, key: str, value: Any) -> _Contact | None:
        if key == "ids":
            return self.contacts.get(value)
        cid = self._emails.get(str(value).casefold())
        return self.contacts.get(cid) if cid is not None else None

    def _change_members(self, req: Request, m: re.Match[str], *, add: bool) -> Response:
        self._only(req, ())
        lst = self._list(m)
        key, values = self._membership_targets(self._body(req), allow_all=not add)
        members = self.members[lst.id]
        if key == "all":
            total = len(members)
            for cid in list(members):
                self.contacts[cid].lists.discard(lst.id)
                self._touch(self.contacts[cid])
            members.clear()
            pid = self._new_process({"kind": "remove_all"}, done=True)
            return Response(
                201, {"contacts": {"success": [], "failure": [], "total": total, "processId": pid}}
            )
        success, failure = [], []
        for value in values:
            contact = self._resolve(key, value)
            if contact is None or (contact.id in members) == add:
                failure.append(value)  # unknown, or already in (out of) the list
                continue
            if add:
                members.add(contact.id)
                contact.lists.add(lst.id)
            else:
                members.discard(contact.id)
                contact.lists.discard(lst.id)
            self._touch(contact)
            success.append(value)
        return Response(201, {"contacts": {"success": success, "failure": failure}})

    def _add_to_list(self, req: Request, m: re.Match[str]) -> Response:
        return self._change_members(req, m, add=True)

    def _remove_from_list(self, req: Request, m: re.Match[str]) -> Response:
        return self._change_members(req, m, add=False)

    # -- imports and processes ------------------------------------------------------------------

    def _import(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        if len(req.body) > MAX_IMPORT_BYTES:
            raise _bad("the import body is larger than 10 MB; split it or use fileUrl", "out_of_range")
        body = self._body(req)
        allowed = {
            "fileUrl", "fileBody", "jsonBody", "listIds", "notifyUrl", "newList", "emailBlacklist",
            "disableNotification", "smsBlacklist", "updateExistingContacts", "emptyContactsAttributes",
            "consentGroupIds",
        }  # fmt: skip
        unknown = set(body) - allowed
        if unknown:
            raise _bad(f"unknown body field {sorted(unknown)[0]}")
        sources = [k for k in ("fileUrl", "fileBody", "jsonBody") if k in body]
        if len(sources) != 1:
            raise _bad("send exactly one of fileUrl, fileBody or jsonBody", "missing_parameter")
        if sources[0] != "jsonBody":
            raise _bad("the segsync sandbox emulates jsonBody imports only")
        items = body["jsonBody"]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise _bad("jsonBody must be a non-empty array of objects")
        for item in items:
            if set(item) - {"email", "attributes"} or not isinstance(item.get("attributes", {}), dict):
                raise _bad("each jsonBody item is {email, attributes}")
        list_ids, new_list = body.get("listIds"), body.get("newList")
        if list_ids is not None:
            if not isinstance(list_ids, list) or any(
                isinstance(i, bool) or not isinstance(i, int) for i in list_ids
            ):
                raise _bad("listIds must be an array of integers")
            missing = [i for i in list_ids if i not in self.lists]
            if missing:
                raise _bad(f"list {missing[0]} does not exist")
        if new_list is not None and (
            not isinstance(new_list, dict)
            or not isinstance(new_list.get("listName"), str)
            or new_list.get("folderId") not in self.folders
        ):
            raise _bad("newList needs a listName and an existing folderId")
        if self.require_import_list and not list_ids and new_list is None:
            raise _bad("listIds is mandatory if newList is not defined", "missing_parameter")
        if body.get("emptyContactsAttributes") and not body.get("updateExistingContacts"):
            raise _bad("emptyContactsAttributes is only available with updateExistingContacts")
        pid = self._new_process(body)
        return Response(202, {"processId": pid})

    def _new_process(self, payload: dict[str, Any], *, done: bool = False) -> int:
        pid = self._next["process"]
        self._next["process"] += 1
        self.processes[pid] = _Process(pid, self.clock.now(), payload, done=done)
        return pid

    def _step(self, proc: _Process) -> int:
        """0 queued, 1 in_process, 2 completed: one step per poll, or by itself over time."""
        if proc.done:
            return 2
        by_time = int((self.clock.now() - proc.started) // self.import_step_seconds)
        return min(2, max(proc.polls - 1, by_time))

    def _settle(self) -> None:
        """Apply imports that completed by themselves, in the order they were sent."""
        for proc in sorted(self.processes.values(), key=lambda p: p.id):
            if not proc.done and self._step(proc) >= 2:
                self._complete(proc.id)

    def _complete(self, pid: int) -> None:
        for proc in sorted(self.processes.values(), key=lambda p: p.id):
            if proc.id > pid:
                break
            if not proc.done:
                proc.done = True
                self._apply_import(proc)

    def _get_process(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        proc = self.processes.get(int(m["process"]))
        if proc is None:
            raise _missing("Process")
        proc.polls += 1
        step = self._step(proc)
        if step == 2:
            self._complete(proc.id)
        body: dict[str, Any] = {
            "id": proc.id,
            "name": "IMPORTUSER",
            "status": ("queued", "in_process", "completed")[step],
        }
        if step == 2 and proc.payload.get("kind") != "remove_all":
            reports = {"invalid_emails": proc.invalid_emails, "duplicate_email_id": proc.duplicate_emails}
            body["info"] = {
                "import": {
                    k: f"{self.base_url}/reports/{proc.id}/{k}.csv" if v else None for k, v in reports.items()
                }
            }
        return Response(200, body)

    def _coerce(self, attr: _Attribute, value: Any) -> tuple[bool, Any]:
        """(applies, stored value): what Brevo keeps of a value; wrong types are ignored."""
        if attr.category == "category":
            codes = {e["value"] for e in attr.enumeration or ()}
            ok = isinstance(value, int) and not isinstance(value, bool) and value in codes
            return ok, value
        if attr.type == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return ok, float(value) if ok else None
        if attr.type == "date":
            ok = isinstance(value, str) and bool(_DATE.fullmatch(value))
            return ok, value
        if attr.type == "boolean":
            return isinstance(value, bool), value
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        return ok, str(value) if ok else None

    def _set_attribute(self, contact: _Contact, attr: _Attribute, value: Any, *, erase: bool) -> None:
        """Store one value as Brevo would: empty clears (when erasing), wrong types are ignored."""
        if value is None or value == "":
            if erase:
                contact.attributes.pop(attr.name, None)
            return
        ok, stored = self._coerce(attr, value)
        if ok:
            contact.attributes[attr.name] = stored

    def _apply_import(self, proc: _Process) -> None:
        body = proc.payload
        if body.get("kind") == "remove_all":
            return
        items: list[dict[str, Any]] = body["jsonBody"]
        update = bool(body.get("updateExistingContacts"))
        erase = bool(body.get("emptyContactsAttributes"))
        list_ids = list(body.get("listIds") or ())
        new_list = body.get("newList")
        if new_list is not None:
            list_ids.append(self._new_list(new_list["listName"], new_list["folderId"]))
        # With emptyContactsAttributes an import is a table: a column any item has is empty in
        # the items that lack it, and empty cells erase what the contact holds.
        columns = {k.upper() for item in items for k in item.get("attributes") or {}}
        seen: set[str] = set()
        for item in items:
            email = item.get("email")
            if not isinstance(email, str) or not _EMAIL.fullmatch(email):
                proc.invalid_emails.append(str(email))
                continue
            if email.casefold() in seen:  # one contact per email: a later row is a duplicate
                proc.duplicate_emails.append(email)
                continue
            seen.add(email.casefold())
            cid = self._emails.get(email.casefold())
            existing = cid is not None
            contact = (
                self.contacts[cid]
                if cid is not None
                else self._add_contact(self._next["contact"], email, {}, self.now())
            )
            if not existing or update:
                values = {k.upper(): v for k, v in (item.get("attributes") or {}).items()}
                for name in columns if erase else values:
                    attr = self.attributes.get(name)
                    if attr is not None:  # Brevo ignores attributes the account does not have
                        self._set_attribute(contact, attr, values.get(name, ""), erase=erase and existing)
            for lid in list_ids:
                if lid in self.lists:
                    self.members[lid].add(contact.id)
                    contact.lists.add(lid)
            self._touch(contact)

    # -- deals, pipelines, orders ----------------------------------------------------------------

    def _deal_json(self, deal: _Deal) -> dict[str, Any]:
        return {
            "id": deal.id,
            "attributes": dict(deal.attributes) | {"number_of_contacts": len(deal.contacts)},
            "linkedContactsIds": list(deal.contacts),
            "linkedCompaniesIds": [],
        }

    def _get_deals(self, req: Request, m: re.Match[str]) -> Response:
        self._only(
            req,
            (
                "filters[attributes.deal_name]", "filters[attributes.deal_owner]",
                "filters[attributes.deal_stage]",
                "filters[attributes.pipeline]", "filters[linkedCompaniesIds]", "filters[linkedContactsIds]",
                "modifiedSince", "createdSince", "offset", "limit", "sort", "sortBy",
            ),
        )  # fmt: skip
        sort_by = req.arg("sortBy", "created_at")
        if sort_by not in ("created_at", "last_updated_date"):
            raise _bad("the segsync sandbox sorts deals by created_at or last_updated_date only")
        modified = self._since(req, "modifiedSince")
        created = self._since(req, "createdSince")
        stage = req.arg("filters[attributes.deal_stage]")
        linked = req.arg("filters[linkedContactsIds]")
        deals = []

        def order(deal: _Deal) -> tuple[dt.datetime, str]:
            return (deal.updated if sort_by == "last_updated_date" else deal.created), deal.id

        for deal in sorted(self.deals.values(), key=order):
            if modified is not None and deal.updated < modified:
                continue
            if created is not None and deal.created < created:
                continue
            if stage is not None and deal.attributes.get("deal_stage") != stage:
                continue
            if linked is not None and (not linked.isdigit() or int(linked) not in deal.contacts):
                continue
            deals.append(deal)
        page = self._page(req, deals, default=50, high=self.deals_page_max)
        return Response(200, {"items": [self._deal_json(d) for d in page]})

    def _get_pipelines(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        stages = [
            {"id": self.stages["open"], "name": "New"},
            {"id": self.stages["won"], "name": "Won"},
            {"id": self.stages["lost"], "name": "Lost"},
        ]
        return Response(
            200, [{"pipeline": self.pipeline_id, "pipeline_name": "Sales pipeline", "stages": stages}]
        )

    def _get_deal_attributes(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ())
        catalogue = [
            ("deal_name", "Deal name", "text", True),
            ("deal_owner", "Deal owner", "user", False),
            ("amount", "Amount", "number", False),
            ("pipeline", "Pipeline", "pipeline", False),
            ("deal_stage", "Deal stage", "stage", False),
            ("close_date", "Close date", "date", False),
            ("deal_currency", "Currency", "text", False),  # a custom attribute this account has
            ("created_at", "Created at", "date", False),
        ]
        return Response(
            200,
            [
                {
                    "internalName": n,
                    "label": label,
                    "attributeTypeName": t,
                    "attributeOptions": [],
                    "isRequired": r,
                }
                for n, label, t, r in catalogue
            ],
        )

    def _get_orders(self, req: Request, m: re.Match[str]) -> Response:
        self._only(req, ("limit", "offset", "sort", "modifiedSince", "createdSince"))
        modified = self._since(req, "modifiedSince")
        created = self._since(req, "createdSince")
        orders = [
            o
            for o in sorted(self.orders.values(), key=lambda o: (o.created, o.id))
            if (modified is None or o.updated >= modified) and (created is None or o.created >= created)
        ]
        page = self._page(req, orders, default=50, high=100)
        out = []
        for o in page:
            item: dict[str, Any] = {
                "id": o.id,
                "createdAt": _ts(o.created),
                "updatedAt": _ts(o.updated),
                "status": o.status,
                "amount": o.amount,
                "storeId": "sandbox",
                "products": [],
            }
            contact = self.contacts.get(o.contact_id) if o.contact_id is not None else None
            if contact is not None:
                item["contact_id"] = contact.id
                if contact.email:
                    item["email"] = contact.email
            elif o.email:
                item["email"] = o.email
            out.append(item)
        return Response(200, {"orders": out, "count": len(orders)})


__all__ = ["BrevoSandbox"]
