"""The other side of the account: a store selling through Brevo's CRM API (brevo-python against
the sandbox over HTTP), and segsync's next sync moving the buyer's RFM fields."""

from __future__ import annotations

import datetime as dt

import pytest
from brevo import Brevo
from brevo.core.api_error import ApiError

from segsync.testing import StateFile
from segsync.testing.spec import assert_traffic_conforms

from .conftest import KEY, connect

AS_OF = dt.date(2026, 1, 15)


def store_client(sandbox) -> Brevo:
    return Brevo(api_key=KEY, base_url=sandbox.base_url, max_retries=0, client_id=None, client_secret=None)


def test_a_deal_won_through_the_api_moves_the_buyers_rfm_fields(sandbox, clock, tmp_path, traffic_log):
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = state.sync(connect(sandbox, clock), as_of=AS_OF)
    buyer = next(c for c, v in first.desired.values.items() if v["segsync_order_count"] == 1)
    clock.advance(3600)
    store = store_client(sandbox)
    stages = sandbox.state.stages
    deal = store.deals.create_a_deal(
        name="Web order", attributes={"amount": 80, "close_date": "2026-01-14T09:00:00Z"}
    )
    store.deals.link_and_unlink_a_deal_with_contacts_and_companies(deal.id, link_contact_ids=[int(buyer)])
    store.deals.update_a_deal(deal.id, attributes={"deal_stage": stages["won"]})  # paid
    again = state.sync(connect(sandbox, clock), as_of=AS_OF)
    assert again.desired.values[buyer]["segsync_order_count"] == 2
    clock.advance(60)
    store.deals.update_a_deal(deal.id, attributes={"deal_stage": stages["lost"]})  # refunded
    third = state.sync(connect(sandbox, clock), as_of=AS_OF)
    assert third.desired.values[buyer]["segsync_order_count"] == 1
    assert_traffic_conforms("brevo", traffic_log)  # the store's calls and segsync's alike


def test_the_sandbox_refuses_what_brevo_refuses(quiet_sandbox):
    store = store_client(quiet_sandbox)
    with pytest.raises(ApiError) as unknown:
        store.deals.create_a_deal(name="x", attributes={"colour": "red"})
    assert unknown.value.status_code == 400
    with pytest.raises(ApiError) as nobody:
        store.deals.create_a_deal(name="x", linked_contacts_ids=[987654])
    assert nobody.value.status_code == 400
    with pytest.raises(ApiError) as gone:
        store.deals.update_a_deal("64f0000000000000000000ff", attributes={"amount": 1})
    assert gone.value.status_code == 404
