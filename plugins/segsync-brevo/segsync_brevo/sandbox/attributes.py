"""Contact attributes in the sandbox: the catalogue, creates by category, category updates."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from segsync.sandbox import Request, Response
from segsync_brevo.sandbox.account import Attribute
from segsync_brevo.sandbox.wire import Endpoint, Routes, bad, missing, object_body, only

_ATTR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CATEGORIES = ("normal", "transactional", "category", "calculated", "global")


def enumeration(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A category attribute's ``enumeration``: distinct integer values with 1-200 character labels."""
    items = body.get("enumeration")
    if not isinstance(items, list) or not items:
        raise bad("a category attribute needs a non-empty enumeration", "missing_parameter")
    seen: set[int] = set()
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"value", "label"}:
            raise bad("each enumeration item is exactly {value, label}")
        value, label = item["value"], item["label"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("enumeration values must be integers")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise bad("enumeration labels must be 1 to 200 characters")
        if value in seen:
            raise bad(f"enumeration value {value} appears twice", "duplicate_parameter")
        seen.add(value)
        out.append({"value": value, "label": label})
    return out


def _type_of(category: str, body: dict[str, Any]) -> str | None:
    """The attribute type a create asks for, checked against what its category takes."""
    type_ = body.get("type")
    if category in ("calculated", "global"):
        if not isinstance(body.get("value"), str) or "type" in body or "enumeration" in body:
            raise bad(f"a {category} attribute takes a value formula only", "missing_parameter")
        return None
    allowed = {"text", "date", "float", "boolean"} | (
        {"multiple-choice", "user"} if category == "normal" else {"id"}
    )
    if type_ not in allowed:
        raise bad(f"type must be one of {', '.join(sorted(allowed))} for a {category} attribute")
    if "enumeration" in body:
        raise bad("enumeration is only for category attributes")
    return str(type_)


class AttributeRoutes(Routes):
    """``/contacts/attributes``: list, create and update."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("GET", r"/v3/contacts/attributes", self.get_attributes),
            ("POST", r"/v3/contacts/attributes/(?P<category>[^/]+)/(?P<name>[^/]+)", self.create_attribute),
            ("PUT", r"/v3/contacts/attributes/(?P<category>[^/]+)/(?P<name>[^/]+)", self.update_attribute),
        )

    def get_attributes(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        out = []
        for attr in self.account.attributes.values():
            item: dict[str, Any] = {"name": attr.name, "category": attr.category}
            if attr.category == "category":
                # the spec's example lists category attributes with type "text"
                item["type"] = "text"
                item["enumeration"] = [dict(e) for e in attr.enumeration or ()]
            elif attr.type is not None:
                item["type"] = attr.type
            out.append(item)
        return Response(200, {"attributes": out})

    def create_attribute(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        category, name = m["category"], m["name"]
        body = object_body(req)
        if category not in _CATEGORIES:
            raise bad(f"unknown attribute category {category}")
        if not _ATTR_NAME.fullmatch(name):
            raise bad("attribute names are letters, digits and underscores, starting with a letter")
        name = name.upper()
        if name in self.account.attributes:
            raise bad(f"attribute {name} already exists", "duplicate_parameter")
        unknown = set(body) - {"type", "enumeration", "multiCategoryOptions", "value", "isRecurring"}
        if unknown:
            raise bad(f"unknown body field {sorted(unknown)[0]}")
        values = None
        if category == "category":
            if body.get("type") not in (None, "category") or set(body) - {"type", "enumeration"}:
                raise bad("a category attribute takes type category and an enumeration only")
            values = enumeration(body)
            type_: str | None = "category"
        else:
            type_ = _type_of(category, body)
        self.account.attributes[name] = Attribute(name, category, type_, values)
        return Response(201)

    def update_attribute(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        category, name = m["category"], m["name"].upper()
        attr = self.account.attributes.get(name)
        if attr is None or attr.category != category:
            raise missing(f"Attribute {category}/{name}")
        body = object_body(req)
        if category != "category":
            raise bad(f"the segsync sandbox only updates category attributes, not {category}")
        if set(body) != {"enumeration"}:
            raise bad("updating a category attribute takes an enumeration only")
        attr.enumeration = enumeration(body)
        return Response(204)
