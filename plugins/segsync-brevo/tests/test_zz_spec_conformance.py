"""Every exchange the tests above made through brevo-python conforms to Brevo's OpenAPI spec.

Runs last (file order): it validates the session's traffic log with ``shared/tools/spec-check``.
The spec copy (Feb 2025) documents 401 only globally (``info.description``), not per
operation, so the 401 answers of the wrong-key tests are checked here for Brevo's error body
and left out of the spec run; everything else must conform, 0 exceptions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segsync.testing.spec import assert_traffic_conforms

#: Operations the suite must have exercised, so a silently empty log cannot pass.
EXPECTED = [
    ("GET", r"/v3/contacts"),
    ("GET", r"/v3/contacts/attributes"),
    ("POST", r"/v3/contacts/attributes/category/\w+"),
    ("POST", r"/v3/contacts/attributes/normal/\w+"),
    ("PUT", r"/v3/contacts/attributes/category/\w+"),
    ("GET", r"/v3/contacts/folders"),
    ("POST", r"/v3/contacts/folders"),
    ("GET", r"/v3/contacts/folders/\d+/lists"),
    ("GET", r"/v3/contacts/lists"),
    ("POST", r"/v3/contacts/lists"),
    ("GET", r"/v3/contacts/lists/\d+"),
    ("GET", r"/v3/contacts/lists/\d+/contacts"),
    ("POST", r"/v3/contacts/lists/\d+/contacts/add"),
    ("POST", r"/v3/contacts/lists/\d+/contacts/remove"),
    ("POST", r"/v3/contacts/import"),
    ("PUT", r"/v3/contacts/\d+"),
    ("GET", r"/v3/contacts/\d+"),
    ("GET", r"/v3/contacts/[^/]*%2B[^/]*@[^/]+"),
    ("DELETE", r"/v3/contacts/\d+"),
    ("GET", r"/v3/processes/\d+"),
    ("GET", r"/v3/crm/deals"),
    ("GET", r"/v3/crm/pipeline/details/all"),
    ("GET", r"/v3/crm/attributes/deals"),
    ("GET", r"/v3/orders"),
]


def test_all_sdk_traffic_conforms_to_brevos_openapi_spec(traffic_log: Path, tmp_path: Path) -> None:
    if not traffic_log.is_file():
        pytest.fail(f"no traffic was recorded in {traffic_log}; run the whole plugin suite")
    exchanges = [json.loads(line) for line in traffic_log.read_text(encoding="utf-8").splitlines() if line]
    seen = {(e["method"], e["path"]) for e in exchanges}
    missing = [(m, p) for m, p in EXPECTED if not any(sm == m and re.fullmatch(p, sp) for sm, sp in seen)]
    assert not missing, f"the suite no longer exercises {missing}"
    for e in exchanges:
        assert e["request_headers"].get("api-key") in ("REDACTED", None), "a secret reached the log"
    unauthorized = [e for e in exchanges if e["status"] == 401]
    for e in unauthorized:
        assert json.loads(e["response_body"]) == {"code": "unauthorized", "message": "Key not found"}
    checked = tmp_path / "checked.jsonl"
    checked.write_text(
        "".join(json.dumps(e) + "\n" for e in exchanges if e["status"] != 401), encoding="utf-8"
    )
    assert_traffic_conforms("brevo", checked)
