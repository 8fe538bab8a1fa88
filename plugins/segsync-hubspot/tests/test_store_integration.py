"""The other side of the portal: a store integration selling through HubSpot's API (the real
SDK against the sandbox over HTTP), and segsync's next sync moving the buyer's RFM fields,
from an incremental pull of the deals that changed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import hubspot
import pytest
from hubspot.crm.associations.v4 import ApiException as AssociationError
from hubspot.crm.deals import ApiException as DealError
from hubspot.crm.deals import SimplePublicObjectInput, SimplePublicObjectInputForCreate

from segsync.testing import StateFile
from segsync.testing.spec import assert_traffic_conforms

from .conftest import AS_OF, TOKEN

TO_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]


def store_client(sandbox: Any) -> Any:
    """The store integration's own client: HubSpot's SDK, another app on the same portal."""
    return hubspot.Client.create(access_token=TOKEN, host=sandbox.base_url)


def sell(client: Any, contact_id: str, amount: str, closed: str) -> str:
    deal = SimplePublicObjectInputForCreate(
        properties={
            "dealname": "Web order",
            "amount": amount,
            "closedate": closed,
            "dealstage": "closedwon",
            "pipeline": "default",
        },
        associations=[{"to": {"id": contact_id}, "types": TO_CONTACT}],
    )
    return str(client.crm.deals.basic_api.create(simple_public_object_input_for_create=deal).id)


def test_a_sale_made_through_the_api_moves_the_buyers_rfm_fields(
    make_sandbox, make_platform, demo_data, clock, tmp_path, traffic_log
):
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = state.sync(make_platform(sandbox), as_of=AS_OF)
    buyer = next(c for c, v in first.desired.values.items() if v["segsync_order_count"] == 1)
    clock.advance(3600)
    client = store_client(sandbox)
    sold = sell(client, buyer, "80.00", f"{AS_OF.isoformat()}T09:00:00Z")
    assert sandbox.account.deals[sold].contacts == [buyer]

    platform = make_platform(sandbox)
    again = state.sync(platform, as_of=AS_OF)
    assert again.desired.values[buyer]["segsync_order_count"] == 2
    assert sandbox.contact_values(buyer)["segsync_order_count"] == "2"
    ops = platform.runner.stats.per_operation
    assert ops["deals.search"] == 1, "only the changed deals were read"
    assert "deals.list" not in ops
    assert again.report.purchases_pulled <= 3  # the sale and what the cursor's overlap re-reads

    # the store refunds it by moving the deal out of the won stage: the next sync takes it back
    client.crm.deals.basic_api.update(
        sold, simple_public_object_input=SimplePublicObjectInput(properties={"dealstage": "closedlost"})
    )
    clock.advance(60)
    third = state.sync(make_platform(sandbox), as_of=AS_OF)
    assert third.desired.values[buyer]["segsync_order_count"] == 1
    assert_traffic_conforms("hubspot", traffic_log)  # the store's calls and segsync's alike


def test_the_sandbox_refuses_what_hubspot_refuses(make_sandbox, small_data):
    client = store_client(make_sandbox(small_data))
    with pytest.raises(DealError) as bad:
        sell(client, "99999", "10.00", "2026-01-01T00:00:00Z")  # no such contact
    assert bad.value.status == 400
    with pytest.raises(DealError) as read_only:
        client.crm.deals.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties={"hs_lastmodifieddate": "2026-01-01T00:00:00Z"}, associations=[]
            )
        )
    assert read_only.value.status == 400
    with pytest.raises(DealError) as gone:
        client.crm.deals.basic_api.update(
            "123456", simple_public_object_input=SimplePublicObjectInput(properties={})
        )
    assert gone.value.status == 404
    with pytest.raises(AssociationError) as dead:
        client.crm.associations.v4.basic_api.create_default("deals", "5001", "contacts", "99999")
    assert dead.value.status == 400


def test_an_association_made_later_is_seen_by_a_full_pull(make_sandbox, make_platform, small_data, clock):
    sandbox = make_sandbox(small_data)
    client = store_client(sandbox)
    client.crm.associations.v4.basic_api.create_default("deals", "5001", "contacts", "107")
    assert sandbox.account.deals["5001"].contacts == ["100", "107"]
    pulled = {
        (p.id, p.contact_id) for p in make_platform(sandbox).iter_purchases(None) if hasattr(p, "contact_id")
    }
    assert ("5001", "107") in pulled
    client.crm.deals.basic_api.archive("5002")
    assert sandbox.account.deals["5002"].archived
    assert dt.datetime.fromisoformat(sandbox.account.deals["5002"].archived_at.replace("Z", "+00:00"))
