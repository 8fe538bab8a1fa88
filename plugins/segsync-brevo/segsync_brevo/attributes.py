"""Brevo contact attributes: segsync's fields, found, created and kept in shape.

Brevo ignores attributes it does not know and values of the wrong type, so the catalogue is
read again before every write and each field's attribute checked (:meth:`Attributes.shapes`):
a write Brevo could not store is never sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from brevo.contacts import CreateAttributeRequestEnumerationItem, UpdateAttributeRequestEnumerationItem

from segsync import ConflictError, FieldSpec, PermanentError, RemoteField
from segsync_brevo import mapping
from segsync_brevo.client import NO_RETRY, PLATFORM
from segsync_brevo.session import BrevoSession

#: Per field key: (attribute name, kind, option codes of a category attribute).
Shape = tuple[str, str, dict[str, int]]


class Attributes:
    """The account's attribute catalogue and the field specs segsync manages in it."""

    def __init__(self, session: BrevoSession) -> None:
        self.session = session
        self._specs: dict[str, FieldSpec] = {}
        self._catalogue: dict[str, dict[str, Any]] | None = None

    def catalogue(self, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """Attributes by upper-case name (``GET /contacts/attributes``), read once unless refreshed."""
        if self._catalogue is None or refresh:
            sdk = self.session.sdk
            body = self.session.call(
                "attributes.list",
                lambda: sdk.contacts.with_raw_response.get_attributes(request_options=NO_RETRY),
            ).body
            self._catalogue = {str(a["name"]).upper(): a for a in (body or {}).get("attributes") or ()}
        return self._catalogue

    def remember(self, specs: Sequence[FieldSpec]) -> None:
        """Keep the specs: their options fix the codes of category values."""
        self._specs.update((s.key, s) for s in specs)

    def codes(self, key: str, attr: Mapping[str, Any]) -> dict[str, int]:
        """Option value -> Brevo's integer code, for a category attribute."""
        enumeration = attr.get("enumeration") or ()
        spec = self._specs.get(key)
        if spec is not None:
            return mapping.option_codes(spec.options, enumeration)
        return mapping.codes_from_labels(enumeration)

    def inspect(self, specs: Sequence[FieldSpec]) -> Mapping[str, RemoteField | None]:
        self.remember(specs)
        catalogue = self.catalogue(refresh=True)
        out: dict[str, RemoteField | None] = {}
        for spec in specs:
            attr = catalogue.get(mapping.attribute_name(spec.key))
            out[spec.key] = mapping.remote_field(attr, spec) if attr is not None else None
        return out

    def create(self, specs: Sequence[FieldSpec]) -> None:
        """Create the attributes that are missing; one an earlier attempt made is taken if it fits."""
        self.remember(specs)
        catalogue = self.catalogue(refresh=True)
        for spec in specs:
            name = mapping.attribute_name(spec.key)
            if name in catalogue:
                continue
            category, brevo_type = mapping.ATTRIBUTE_SHAPES[spec.type]
            # Only the keys the category takes: the SDK would send an explicit None as null.
            body: dict[str, Any] = {"type": brevo_type}
            if category == "category":
                body["enumeration"] = [
                    CreateAttributeRequestEnumerationItem(**e) for e in mapping.plan_enumeration(spec, [])
                ]
            try:
                self._create(category, name, body)
            except PermanentError as exc:
                # An earlier attempt whose answer was lost may have created it: look before failing.
                again = self.catalogue(refresh=True).get(name)
                if exc.category != "duplicate_parameter" or again is None:
                    raise
                mismatch = mapping.field_mismatch(spec, mapping.remote_field(again))
                if mismatch:
                    raise ConflictError(mismatch, platform=PLATFORM, operation="attributes.create") from None
        self._catalogue = None

    def _create(self, category: str, name: str, body: Mapping[str, Any]) -> None:
        sdk = self.session.sdk
        self.session.call(
            "attributes.create",
            lambda: sdk.contacts.with_raw_response.create_attribute(
                category, name, request_options=NO_RETRY, **body
            ),
            write=True,
        )

    def update_options(self, spec: FieldSpec) -> None:
        """Make a category attribute carry the spec's options; codes already given never move."""
        self.remember([spec])
        name = mapping.attribute_name(spec.key)
        attr = self.catalogue(refresh=True).get(name)
        if attr is None or mapping.attribute_kind(attr) != "category":
            raise ConflictError(
                f"Brevo attribute {name} is missing or not a category attribute; run segsync check",
                platform=PLATFORM,
                operation="attributes.update",
            )
        existing = list(attr.get("enumeration") or ())
        wanted = mapping.plan_enumeration(spec, existing)
        if wanted == [{"value": int(e["value"]), "label": str(e["label"])} for e in existing]:
            return
        items = [UpdateAttributeRequestEnumerationItem(**e) for e in wanted]
        sdk = self.session.sdk
        self.session.call(
            "attributes.update",
            lambda: sdk.contacts.with_raw_response.update_attribute(
                "category", name, enumeration=items, request_options=NO_RETRY
            ),
            write=True,
        )
        self._catalogue = None

    def shapes(self, keys: set[str]) -> dict[str, Shape]:
        """The shape of every field key about to be written; refuses before anything is sent."""
        catalogue = self.catalogue(refresh=True)
        shapes: dict[str, Shape] = {}
        for key in sorted(keys):
            name = mapping.attribute_name(key)
            attr = catalogue.get(name)
            if attr is None:
                # Brevo would silently drop it: never send a write it cannot store.
                raise PermanentError(
                    f"contact attribute {name} does not exist in Brevo (deleted?); nothing was written. "
                    "Run segsync sync again to re-create it",
                    platform=PLATFORM,
                    operation="contacts.import",
                )
            spec = self._specs.get(key)
            mismatch = mapping.field_mismatch(spec, mapping.remote_field(attr)) if spec else None
            kind = mapping.attribute_kind(attr)
            if mismatch or kind not in ("text", "float", "date", "category"):
                raise ConflictError(
                    mismatch or f"Brevo attribute {name} has type {kind}, which segsync does not write",
                    platform=PLATFORM,
                    operation="contacts.import",
                )
            shapes[key] = (name, kind, self.codes(key, attr))
        return shapes
