"""Contact properties and property groups in the sandbox: definitions HubSpot would refuse are 400s."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from segsync.sandbox import Request, Response
from segsync_hubspot.sandbox.values import Property, check_property_input, stored_options
from segsync_hubspot.sandbox.wire import (
    BATCH_MAX,
    Endpoint,
    Routes,
    batch_inputs,
    bool_arg,
    error,
    item_error,
    json_body,
)

SCHEMAS_READ = ("crm.schemas.contacts.read",)
SCHEMAS_WRITE = ("crm.schemas.contacts.write",)


class PropertyRoutes(Routes):
    """Property definitions (read, batch create, create, update) and property groups."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("GET", r"/crm/v3/properties/contacts/groups", self.get_groups, SCHEMAS_READ),
            ("POST", r"/crm/v3/properties/contacts/groups", self.create_group, SCHEMAS_WRITE),
            ("POST", r"/crm/v3/properties/contacts/batch/create", self.create_properties, SCHEMAS_WRITE),
            ("GET", r"/crm/v3/properties/(contacts|deals|0-1|0-3)", self.get_properties, SCHEMAS_READ),
            ("POST", r"/crm/v3/properties/contacts", self.create_property, SCHEMAS_WRITE),
            ("PATCH", r"/crm/v3/properties/contacts/([^/]+)", self.update_property, SCHEMAS_WRITE),
        )

    def get_properties(self, req: Request, m: re.Match[str]) -> Response:
        kind = {"0-1": "contacts", "0-3": "deals"}.get(m.group(1), m.group(1))
        archived = bool_arg(req, "archived")
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
            created_at=self.now(),
            display_order=int(body.get("displayOrder", -1)),
        )

    def create_properties(self, req: Request, m: re.Match[str]) -> Response:
        started = self.now()
        inputs = batch_inputs(json_body(req), BATCH_MAX)
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
        return self.batch(results, errors, 201, started)

    def create_property(self, req: Request, m: re.Match[str]) -> Response:
        body = json_body(req)
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
        body = json_body(req)
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
        body = json_body(req)
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
