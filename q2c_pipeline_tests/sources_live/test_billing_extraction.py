"""stripe-python against the Stripe fake over HTTP: paging, all invoice lines, created windows,
events since a cursor, and the retry policy for 429 and 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from q2c_pipeline.sources.billing_client import BillingConfig, BillingExtractor
from q2c_pipeline.sources.retry import RetriesExhausted
from q2c_pipeline_tests.fakes.stripe_fake import StripeFakeAccount, StripeFakeServer

API_KEY = "sk_test_q2c_fake"
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _line(invoice: str, number: int, amount: int) -> dict:
    return {
        "id": f"il_{invoice}_{number:02d}", "object": "line_item", "amount": amount,
        "currency": "usd", "quantity": 1, "period": {"start": T0, "end": T0 + 31 * DAY},
        "pricing": {"type": "price_details",
                    "price_details": {"price": "price_seat", "product": "prod_seat"},
                    "unit_amount_decimal": str(amount)},
        "parent": {"type": "subscription_item_details",
                   "subscription_item_details": {"subscription": "sub_1",
                                                 "subscription_item": "si_1",
                                                 "proration": False}},
        "taxes": [],
    }


def _invoice(number: int, created: int, lines: int, status: str = "paid") -> dict:
    invoice_id = f"in_{number:03d}"
    data = [_line(invoice_id, n, 1000 + n) for n in range(lines)]
    return {
        "id": invoice_id, "object": "invoice", "customer": "cus_acme", "currency": "usd",
        "status": status, "created": created, "total": sum(line["amount"] for line in data),
        "status_transitions": {"finalized_at": created, "paid_at": created, "voided_at": None,
                               "marked_uncollectible_at": None},
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": "sub_1", "metadata": {}}},
        "lines": {"object": "list", "url": f"/v1/invoices/{invoice_id}/lines",
                  "has_more": False, "total_count": len(data), "data": data},
    }


INVOICES = [_invoice(1, T0, 2), _invoice(2, T0 + DAY, 12), _invoice(3, T0 + 2 * DAY, 3),
            _invoice(4, T0 + 2 * DAY, 1), _invoice(5, T0 + 3 * DAY, 1)]
CUSTOMERS = [{"id": "cus_acme", "object": "customer", "created": T0 - DAY, "currency": "usd",
              "metadata": {"sf_account_id": "001000000000001AAA"}},
             {"id": "cus_gone", "object": "customer", "created": T0 - DAY, "metadata": {}}]
SUBSCRIPTIONS = [{"id": "sub_1", "object": "subscription", "status": "active", "created": T0},
                 {"id": "sub_2", "object": "subscription", "status": "canceled",
                  "created": T0 + DAY}]


def _event(number: int, kind: str, obj: dict) -> dict:
    return {"id": f"evt_{number:03d}", "object": "event", "type": kind,
            "api_version": "2026-10-28.endive", "created": T0 + 10 * DAY + number * 60,
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}}


EVENTS = [
    _event(1, "invoice.finalized", {**INVOICES[0], "status": "open"}),
    _event(2, "invoice.paid", INVOICES[0]),
    _event(3, "invoice.voided", {**INVOICES[2], "status": "void"}),
    _event(4, "customer.deleted", CUSTOMERS[1]),
    _event(5, "invoice.paid", INVOICES[1]),
    _event(6, "charge.succeeded", {"id": "ch_1", "object": "charge"}),
]


@pytest.fixture
def stripe_server() -> Iterator[StripeFakeServer]:
    account = StripeFakeAccount(
        {"invoices": INVOICES, "customers": CUSTOMERS, "subscriptions": SUBSCRIPTIONS,
         "events": EVENTS},
        api_key=API_KEY, embedded_lines=10,
    )
    server = StripeFakeServer(account).start()
    yield server
    server.stop()


def _extractor(server: StripeFakeServer, **overrides: object) -> BillingExtractor:
    settings: dict = {"api_key": API_KEY, "base_url": server.base_url, "page_size": 2,
                      "max_network_retries": 0, "max_retries": 3, "backoff_base": 0.0}
    settings.update(overrides)
    sleep = settings.pop("sleep", lambda seconds: None)
    clock = settings.pop("clock", lambda: T0 + 400 * DAY)  # after every event of these tests
    return BillingExtractor(BillingConfig(**settings), sleep=sleep, clock=clock)


def test_extract_pages_every_invoice_newest_first_with_all_lines(stripe_server):
    result = _extractor(stripe_server).extract("invoices")

    # newest first; equal `created` break ties by id descending
    assert [i["id"] for i in result.records] == ["in_005", "in_004", "in_003", "in_002", "in_001"]
    twelve = result.records[3]
    assert [line["id"] for line in twelve["lines"]["data"]] == [
        f"il_in_002_{n:02d}" for n in range(12)]
    assert twelve["lines"]["has_more"] is False
    assert twelve["total"] == sum(1000 + n for n in range(12))  # 12066
    # 3 invoice pages of 2 + 6 line pages of 2 for the 12-line invoice
    assert len(result.request_ids) == 9


def test_extracted_objects_are_plain_json_dicts(stripe_server):
    result = _extractor(stripe_server).extract("invoices")

    assert type(result.records[0]) is dict
    assert type(result.records[0]["lines"]["data"][0]["pricing"]) is dict
    assert result.records[-1] == INVOICES[0]


def test_created_window_is_half_open(stripe_server):
    result = _extractor(stripe_server).extract("invoices", created_gte=T0 + DAY,
                                                created_lt=T0 + 3 * DAY)

    assert [i["id"] for i in result.records] == ["in_004", "in_003", "in_002"]


def test_subscriptions_include_canceled_ones(stripe_server):
    result = _extractor(stripe_server).extract("subscriptions")

    assert [s["id"] for s in result.records] == ["sub_2", "sub_1"]


def test_rate_limited_requests_are_retried_with_backoff(stripe_server):
    delays: list[float] = []
    stripe_server.account.inject_faults(429, 2, after=1)  # page 2 answers 429 twice
    extractor = _extractor(stripe_server, backoff_base=0.5, sleep=delays.append)

    result = extractor.extract("invoices")

    assert len(result.records) == 5
    assert delays == [0.5, 1.0]


def test_persistent_rate_limiting_fails_loudly(stripe_server):
    stripe_server.account.inject_faults(429, 10)

    with pytest.raises(RetriesExhausted) as raised:
        _extractor(stripe_server, max_retries=2).extract("customers")
    assert isinstance(raised.value.__cause__, stripe.RateLimitError)
    assert len(stripe_server.account.requests) == 3


def test_server_errors_beyond_the_clients_own_retries_are_retried(stripe_server):
    stripe_server.account.inject_faults(500, 3, should_retry=True)
    extractor = _extractor(stripe_server, max_network_retries=1)
    stripe_server_requests = stripe_server.account.requests

    result = extractor.extract("customers")

    assert [c["id"] for c in result.records] == ["cus_gone", "cus_acme"]
    # client: 2 tries (both 500) -> ours retries -> client: 500, then 200
    assert len(stripe_server_requests) == 4


def test_bad_api_key_is_not_retried(stripe_server):
    with pytest.raises(stripe.AuthenticationError):
        _extractor(stripe_server, api_key="sk_test_wrong").extract("customers")
    assert len(stripe_server.account.requests) == 1


def test_unknown_resource_is_refused(stripe_server):
    with pytest.raises(ValueError, match="unknown billing resource"):
        _extractor(stripe_server).extract("charges")


def test_changes_since_an_event_id_returns_the_latest_state_of_each_changed_object(stripe_server):
    changes = _extractor(stripe_server).changes_since("evt_001")

    assert changes.event_ids == ["evt_002", "evt_003", "evt_004", "evt_005"]
    invoices = {i["id"]: i for i in changes.objects["invoices"]}
    assert sorted(invoices) == ["in_001", "in_002", "in_003"]
    assert invoices["in_001"]["status"] == "paid"  # evt_002 supersedes evt_001's "open"
    assert invoices["in_003"]["status"] == "void"
    assert len(invoices["in_002"]["lines"]["data"]) == 12  # completed beyond the 10 embedded
    assert changes.deleted_ids == {"customers": ["cus_gone"]}
    assert changes.cursor == "evt_005"


def test_changes_since_a_timestamp_and_with_nothing_new(stripe_server):
    extractor = _extractor(stripe_server)

    since_time = extractor.changes_since(T0 + 10 * DAY + 3 * 60)
    nothing = extractor.changes_since("evt_006")

    assert since_time.event_ids == ["evt_004", "evt_005"]
    assert nothing.event_ids == [] and nothing.cursor == "evt_006" and nothing.objects == {}


def _old_shape_invoice(invoice: dict) -> dict:
    """The same invoice as an account on an older default API version (2022-11-15) renders it
    inside an event: the line's price at `price`, tax in `tax_amounts`, no `pricing`/`taxes`."""
    lines = [{key: value for key, value in line.items() if key not in ("pricing", "taxes",
                                                                        "parent")}
             | {"price": {"id": "price_seat", "product": "prod_seat"}, "tax_amounts": [],
                "proration": False}
             for line in invoice["lines"]["data"]]
    return {**invoice, "lines": {**invoice["lines"], "data": lines}, "status": "open"}


def test_an_object_from_an_event_at_another_api_version_is_retrieved_again_at_the_pinned_one():
    # why: Stripe renders data.object at the event's own api_version and never re-renders it;
    # mapping that shape with the endive mappers loses product codes, proration and taxes
    old = {**_event(1, "invoice.updated", _old_shape_invoice(INVOICES[0])),
           "api_version": "2022-11-15"}
    account = StripeFakeAccount({"invoices": INVOICES, "events": [old]}, api_key=API_KEY)
    server = StripeFakeServer(account).start()
    try:
        changes = _extractor(server).changes_since(None)
    finally:
        server.stop()
    (landed,) = changes.objects["invoices"]
    assert landed == INVOICES[0]  # the pinned version's shape, as Stripe holds it now
    assert landed["lines"]["data"][0]["pricing"]["price_details"]["product"] == "prod_seat"
    assert ("/v1/invoices/in_001", {}) in account.requests


def test_a_deleted_draft_is_tombstoned_and_an_object_gone_since_its_event_is_deleted_too():
    draft = {**INVOICES[4], "status": "draft"}
    events = [_event(1, "invoice.created", draft), _event(2, "invoice.deleted", draft),
              # an older-version event for an invoice Stripe no longer has (404 on retrieve)
              {**_event(3, "invoice.updated", {**INVOICES[3], "id": "in_gone"}),
               "api_version": "2024-06-20"}]
    account = StripeFakeAccount({"invoices": INVOICES[:4], "events": events}, api_key=API_KEY)
    server = StripeFakeServer(account).start()
    try:
        changes = _extractor(server).changes_since(None)
    finally:
        server.stop()
    assert changes.objects == {}
    assert changes.deleted_ids == {"invoices": ["in_005", "in_gone"]}


def test_more_than_twenty_event_types_are_read_in_batches_stripe_accepts():
    from q2c_pipeline.sources.billing_client import CHANGE_EVENT_TYPES, MAX_TYPES_PER_REQUEST

    events = [_event(1, "product.updated", {"id": "prod_seat", "object": "product",
                                            "created": T0, "metadata": {}}),
              _event(2, "invoice.paid", INVOICES[0])]
    account = StripeFakeAccount({"invoices": INVOICES, "events": events}, api_key=API_KEY)
    server = StripeFakeServer(account).start()
    try:
        changes = _extractor(server).changes_since(None)
    finally:
        server.stop()
    assert len(CHANGE_EVENT_TYPES) > MAX_TYPES_PER_REQUEST
    batches = [params["types"] for path, params in account.requests if path == "/v1/events"]
    assert all(len(types) <= 20 for types in batches)
    assert sorted(t for types in batches for t in types) == sorted(CHANGE_EVENT_TYPES)
    assert changes.event_ids == ["evt_001", "evt_002"]  # merged in event order
    assert [p["id"] for p in changes.objects["products"]] == ["prod_seat"]


def test_meter_event_summaries_are_read_per_customer_and_meter_in_whole_days():
    meter = {"id": "mtr_api", "object": "billing.meter", "created": T0, "status": "active",
             "default_aggregation": {"formula": "sum"}, "event_name": "api_call"}
    summaries = [{"id": f"mtrusum_{d}", "object": "billing.meter_event_summary",
                  "meter": "mtr_api", "customer": "cus_acme", "aggregated_value": 10 * (d + 1),
                  "start_time": T0 + d * DAY, "end_time": T0 + (d + 1) * DAY}
                 for d in range(3)]
    subscription = {"id": "sub_1", "object": "subscription", "customer": "cus_acme",
                    "start_date": T0 + 3600, "created": T0, "items": {"data": [
                        {"id": "si_1", "price": {"id": "price_api", "recurring": {
                            "usage_type": "metered", "meter": "mtr_api"}}}]}}
    account = StripeFakeAccount({"billing_meters": [meter],
                                 "billing_meter_event_summaries": summaries}, api_key=API_KEY)
    server = StripeFakeServer(account).start()
    try:
        extractor = _extractor(server)
        meters = extractor.extract("billing_meters").records
        # the third day is not over at the extraction (T0 + 2.5 days): only whole days
        result = extractor.meter_event_summaries(meters, [subscription], T0 + 2 * DAY + DAY // 2)
    finally:
        server.stop()
    assert [m["id"] for m in meters] == ["mtr_api"]
    assert sorted((s["id"], s["aggregated_value"], s["customer"]) for s in result.records) == [
        ("mtrusum_0", 10, "cus_acme"), ("mtrusum_1", 20, "cus_acme")]
    (path, params), = [r for r in account.requests if "event_summaries" in r[0]][:1]
    assert path == "/v1/billing/meters/mtr_api/event_summaries"
    assert (params["start_time"], params["end_time"]) == (str(T0), str(T0 + 2 * DAY))


def test_a_page_whose_json_stops_half_way_is_retried_to_the_same_objects(stripe_server):
    clean = _extractor(stripe_server).extract("invoices").records
    stripe_server.account.inject_faults("truncated", 1, after=1)  # the second invoice page
    retried = _extractor(stripe_server).extract("invoices")
    assert retried.records == clean
    # and it was a real fault: with no retries it fails loudly
    stripe_server.account.inject_faults("truncated", 1, after=1)
    with pytest.raises(RetriesExhausted):
        _extractor(stripe_server, max_retries=0).extract("invoices")


def test_every_batch_reads_the_same_slice_of_the_feed_so_no_event_falls_behind_the_cursor():
    # why: with one cursor over several type batches, an invoice.voided created after batch 1
    # was read but before batch 2 ran would sit behind batch 2's newer cursor for ever
    voided = {**_event(1, "invoice.voided", {**INVOICES[2], "status": "void"}),
              "created": T0 + 10 * DAY + 100}
    product = {**_event(2, "product.updated", {"id": "prod_seat", "object": "product",
                                                "created": T0, "metadata": {}}),
               "created": T0 + 10 * DAY + 50}
    account = StripeFakeAccount({"invoices": INVOICES, "events": [product, voided]},
                                api_key=API_KEY)
    server = StripeFakeServer(account).start()
    try:
        # the read starts at +75 s: the void (at +100 s) is not in this slice for any batch
        first = _extractor(server, clock=lambda: T0 + 10 * DAY + 75).changes_since(None)
        later = _extractor(server, clock=lambda: T0 + 10 * DAY + 200).changes_since(first.cursor)
    finally:
        server.stop()
    assert first.event_ids == ["evt_002"] and first.cursor == "evt_002"
    assert later.event_ids == ["evt_001"]
    assert later.objects["invoices"][0]["status"] == "void"


def test_a_404_that_is_not_resource_missing_fails_rather_than_deleting():
    old = {**_event(1, "refund.updated", {"id": "re_1", "object": "refund", "created": T0}),
           "api_version": "2024-06-20"}
    account = StripeFakeAccount({"events": [old]}, api_key=API_KEY)
    server = StripeFakeServer(account).start()
    original = account.retrieve

    def unrecognized(resource, object_id, params=None):
        from q2c_pipeline_tests.fakes.stripe_fake import StripeFakeError
        raise StripeFakeError(404, {"type": "invalid_request_error",
                                    "message": "Unrecognized request URL"})

    account.retrieve = unrecognized
    try:
        with pytest.raises(stripe.InvalidRequestError):
            _extractor(server).changes_since(None)
    finally:
        account.retrieve = original
        server.stop()


def test_a_tiered_price_in_several_currencies_is_read_with_every_currencys_tiers():
    from q2c_pipeline.sources.billing import map_usage_prices
    from q2c_pipeline.sources.usage_pricing import price_from_json

    tiers = [{"up_to": 1000, "unit_amount_decimal": "2"}, {"up_to": None,
                                                            "unit_amount_decimal": "1"}]
    eur = [{"up_to": 1000, "unit_amount_decimal": "1.8"}, {"up_to": None,
                                                            "unit_amount_decimal": "0.9"}]
    price = {"id": "price_api", "object": "price", "product": "prod_api", "currency": "usd",
             "active": True, "created": T0, "billing_scheme": "tiered",
             "tiers_mode": "graduated", "tiers": tiers,
             "currency_options": {"usd": {"tiers": tiers}, "eur": {"tiers": eur}},
             "recurring": {"usage_type": "metered", "interval": "month", "interval_count": 1}}
    account = StripeFakeAccount({"prices": [price]}, api_key=API_KEY)
    server = StripeFakeServer(account).start()
    try:
        (read,) = _extractor(server).extract("prices").records
    finally:
        server.stop()
    assert read["currency_options"]["eur"]["tiers"] == eur  # retrieved with the expansion
    table = map_usage_prices([read], [{"id": "prod_api",
                                       "metadata": {"sf_product_code": "API-CALLS"}}])
    rated = {row["currency"]: price_from_json(row["pricing"]).amount([1500]).tolist()[0]
             for row in table.to_dict("records")}
    # EUR: 1,000 x 1.8 + 500 x 0.9 = 2,250; USD: 1,000 x 2 + 500 x 1 = 2,500
    assert rated == {"EUR": 2250, "USD": 2500}


def test_an_expired_event_cursor_says_what_to_do(stripe_server):
    from q2c_pipeline.sources.billing_client import EventCursorExpired

    with pytest.raises(EventCursorExpired, match="full_refresh: true"):
        _extractor(stripe_server).changes_since("evt_gone_after_30_days")
