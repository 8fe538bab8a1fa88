"""What the core and the plugins accept from CRM records, and how they word what they reject.

Any value a CRM can hold becomes either a value segsync can compute with and write back, or a
per-record :class:`~segsync.core.models.Rejection` that quotes it. The bounds below are the ones
every plugin applies when mapping, and the core applies again (a third-party plugin, or a cache
filled by an older version, may pass anything).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from segsync.core.models import Contact, Rejection

#: Largest amount of one purchase, either way (refunds are negative). HubSpot number
#: properties and Brevo deal amounts and float attributes are IEEE-754 doubles (15 significant
#: digits, whole numbers up to 2**53): up to 10**15 the CRM itself holds every whole amount
#: exactly, and that is still tens of billions of dollars in the home currencies with the
#: smallest units (VND, IDR). Anything larger is a typo or a unit mix-up.
MAX_AMOUNT = Decimal(10) ** 15
#: Amounts are kept to a millionth of the currency unit (finer than any currency's minor
#: unit): with at most 15 + 6 digits each, compute's sums stay exact in Decimal's default 28
#: digits up to 10**22 (ten million purchases at the bound for one contact), and the revenue
#: written back, rounded to cents, never exceeds that precision.
AMOUNT_QUANTUM = Decimal("0.000001")
#: Significant digits of the numbers segsync writes (revenue, average order): a double holds
#: every 15-digit decimal exactly, so cents stay exact below 10**13.
WRITTEN_DIGITS = 15
#: Purchases closed before this are rejected: no CRM holds real deals this old, and such dates
#: are typos or placeholders (0001-01-01) that would decide everyone's recency score.
EARLIEST_PURCHASE = dt.date(1900, 1, 1)
EARLIEST_ORDINAL = EARLIEST_PURCHASE.toordinal()
#: Rejections quote at most this many characters of a value.
QUOTE_LIMIT = 60

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
#: What neither a CRM write nor the state store can carry in an id or an e-mail address:
#: control characters (NUL included) and unpaired surrogates (JSON's "\ud800" escapes decode
#: to those, and UTF-8 cannot encode them).
_BAD_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_ZERO = Decimal(0)
_QUANTUM_EXPONENT = AMOUNT_QUANTUM.adjusted()


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A CRM value for a rejection reason: repr-quoted (so NUL, surrogates and quotes show as
    escapes), cut at ``limit`` characters, with any e-mail address replaced."""
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        return f"<a {type(value).__name__} too long to show>"
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return _EMAIL.sub("<email>", repr(cut))


def is_blank(raw: Any) -> bool:
    """No value at all: absent, null, or only whitespace."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def bad_text(text: str) -> bool:
    """True when ``text`` holds a control character or an unpaired surrogate."""
    return _BAD_TEXT.search(text) is not None


# -- amounts ---------------------------------------------------------------------------------


def parse_number(raw: Any) -> Decimal | None:
    """A finite number from a CRM value (a string, a JSON number, a Decimal), else None.

    Surrounding whitespace and exponent forms ("1.5E3", as Java prints doubles) are read;
    thousands separators are not ("1,234" means 1.234 in half the world).
    """
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        number = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):  # ValueError: an int too long to print
        return None
    return number if number.is_finite() else None


def out_of_range(number: Decimal) -> bool:
    """Beyond :data:`MAX_AMOUNT` either way (``copy_abs`` is exact: no context can overflow)."""
    return number.copy_abs() > MAX_AMOUNT


def range_note() -> str:
    return f"is out of range (at most {MAX_AMOUNT:,} either way)"


def read_amount(raw: Any) -> Decimal | str:
    """The amount in a CRM value, or what is wrong with it as a phrase to follow the field's
    name: ``"'1,234.50' is not a number"``, ``"'1e27' is out of range (...)"``.

    Accepted amounts are kept to :data:`AMOUNT_QUANTUM` and ``-0`` becomes ``0``.
    """
    number = parse_number(raw)
    if number is None and isinstance(raw, int) and not isinstance(raw, bool):
        return f"{quote(raw)} {range_note()}"  # an int too long to print is a number, a huge one
    if number is None:
        return f"{quote(raw)} is not a number"
    if out_of_range(number):
        return f"{quote(raw)} {range_note()}"
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < _QUANTUM_EXPONENT:
        number = number.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_UP)
    return number if number else _ZERO


def as_written(number: Decimal) -> Decimal:
    """``number`` rounded to the :data:`WRITTEN_DIGITS` significant digits a CRM keeps.

    CRM number properties are doubles: a value written with more digits reads back different
    and would be rewritten on every sync. Only totals of huge amounts have that many.
    """
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int) or number.adjusted() - exponent < WRITTEN_DIGITS:
        return number  # at most WRITTEN_DIGITS digits (or not finite)
    return number.quantize(Decimal(1).scaleb(number.adjusted() + 1 - WRITTEN_DIGITS), rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    """An amount in whole cents, rounded half up (away from zero): how the ledger keeps it."""
    return int((amount * 100).to_integral_value(ROUND_HALF_UP))


def currency_reason(currency: str, home: str) -> str:
    """Why a purchase in another currency than the home one is rejected."""
    return (
        f"amount is in {currency.upper()}, not the home currency {home}; amounts in "
        "other currencies are never summed (set [rfm] currency or convert it in the CRM)"
    )


def amount_reason(amount: Decimal) -> str:
    """Why the core refuses an amount a plugin passed (not finite, or out of range)."""
    if not amount.is_finite():
        return "amount is not a number"
    return f"amount {quote(amount)} {range_note()}"


# -- dates -----------------------------------------------------------------------------------


def date_reason(closed: dt.datetime, as_of: dt.date) -> str:
    """Why the core refuses a purchase's close date: too early, or after the reference date."""
    return day_reason(closed.date(), as_of)


def day_reason(day: dt.date, as_of: dt.date) -> str:
    """:func:`date_reason` for the day alone (the ledger keeps days)."""
    if day < EARLIEST_PURCHASE:
        return (
            f"closed on {day.isoformat()}, before {EARLIEST_PURCHASE.isoformat()}: a typo or a "
            "placeholder date; correct the close date in the CRM"
        )
    return (
        f"closed on {day.isoformat()}, after the reference date {as_of.isoformat()} (as_of); "
        "it counts in runs on or after that day"
    )


# -- contacts --------------------------------------------------------------------------------


def accept_contacts(contacts: Iterable[Contact]) -> tuple[list[Contact], dict[str, str], list[Rejection]]:
    """The contacts compute uses; every pulled id mapped to why it was refused ("" if it was
    not); one rejection per refused record."""
    accepted: list[Contact] = []
    pulled: dict[str, str] = {}
    rejections: list[Rejection] = []
    for c in contacts:
        if c.id in pulled:
            rejections.append(
                Rejection(
                    kind="contact", record_id=c.id, reason="duplicate contact id; the first copy is used"
                )
            )
            continue
        reason = _contact_problem(c)
        pulled[c.id] = reason
        if reason:
            rejections.append(Rejection(kind="contact", record_id=c.id, reason=reason))
        else:
            accepted.append(c)
    return accepted, pulled, rejections


def _contact_problem(c: Contact) -> str:
    if bad_text(c.id):
        return "contact id holds a control character or an unpaired surrogate"
    email = c.email or ""
    if not email.strip():
        return "missing email"
    if bad_text(email):  # never quoted: it is PII
        return "email holds a control character or an unpaired surrogate"
    return ""


def orphan_rejections(purchases: Iterable[tuple[str, str]], pulled: Mapping[str, str]) -> list[Rejection]:
    """Rejections for purchases (``(purchase id, contact id)`` pairs) of contacts that compute
    does not use: not pulled, or refused."""
    out: list[Rejection] = []
    for purchase_id, contact_id in purchases:
        refused = pulled.get(contact_id)
        if refused == "":
            continue  # a duplicate's purchases count for its first copy
        if refused is not None:
            reason = f"contact {contact_id} was rejected ({refused}); its purchase is not counted"
        elif contact_id:
            reason = f"contact {contact_id} was not among the pulled contacts (deleted or not a contact)"
        else:
            reason = "not associated with any contact"
        out.append(Rejection(kind="purchase", record_id=purchase_id, reason=reason))
    return out
