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

The package: :mod:`.facade` (:class:`BrevoSandbox`, the :class:`segsync.sandbox.SandboxBase`
of this platform), :mod:`.server` (auth, rate buckets, faults) with the handlers in
:mod:`.contacts`, :mod:`.attributes`, :mod:`.lists`, :mod:`.imports` and :mod:`.crm` on the
wire conventions of :mod:`.wire`, and the emulated account in :mod:`.account`.
"""

from __future__ import annotations

from segsync_brevo.sandbox.account import BrevoAccount
from segsync_brevo.sandbox.facade import BrevoSandbox
from segsync_brevo.sandbox.imports import ImportQueue
from segsync_brevo.sandbox.server import BrevoServer

__all__ = ["BrevoAccount", "BrevoSandbox", "BrevoServer", "ImportQueue"]
