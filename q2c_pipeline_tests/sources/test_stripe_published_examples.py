"""The Stripe mappers over Stripe's own example objects (not shapes q2c wrote): the openapi
repository's fixtures3.json at API version 2026-07-29.dahlia, copied verbatim into
q2c_pipeline_tests/fixtures/stripe_openapi/fixtures3_dahlia.json (its ``_source`` names the
commit). Placeholder values (``"currency": "currency"``) are Stripe's own."""

import copy
import hashlib
import json
from pathlib import Path

import pandas as pd

from q2c_pipeline.schemas.validation import validate_canonical
from q2c_pipeline.sources.billing import (
    map_credit_notes,
    map_invoice_lines,
    map_invoices,
    map_payments,
    map_refunds,
)
from q2c_pipeline_tests.fixtures.canonical_rows import canonical_company

FIXTURES = json.loads((Path(__file__).parents[1] / "fixtures" / "stripe_openapi"
                       / "fixtures3_dahlia.json").read_text())["resources"]


def test_stripes_example_invoice_line_with_taxes_null_is_unknown_tax_not_zero():
    # the example line: amount 1000, discount_amounts [], taxes null -- Stripe did not state the
    # tax, so q2c must not book it as 0 (validation then quarantines the line)
    lines = map_invoice_lines([FIXTURES["invoice"]])
    assert len(lines) == 1
    line = lines.iloc[0]
    assert line["invoice_line_id"] == "stripe:il_1Pgc6sB7WZ01zgkWFnxLrLCq"
    assert line["amount"] == 1000 and line["discount_amount"] == 0
    assert pd.isna(line["tax_amount"])


def test_a_line_discount_is_taken_off_the_amount_and_an_invoice_discount_is_spread():
    invoice = copy.deepcopy(FIXTURES["invoice"])
    line = invoice["lines"]["data"][0]
    line["taxes"] = []
    line["discount_amounts"] = [{"amount": 100, "discount": "di_line"}]
    mapped = map_invoice_lines([invoice]).iloc[0]
    assert (mapped["amount"], mapped["discount_amount"], mapped["tax_amount"]) == (900, 100, 0)
    # an invoice-level discount of 400 the lines do not show: spread by amount, 1000 : 3000
    second = dict(copy.deepcopy(line), id="il_second", amount=3000, discount_amounts=[])
    line["discount_amounts"] = []
    invoice["lines"]["data"].append(second)
    invoice["total_discount_amounts"] = [{"amount": 400, "discount": "di_invoice"}]
    mapped = map_invoice_lines([invoice]).set_index("invoice_line_id")
    assert mapped.loc["stripe:il_1Pgc6sB7WZ01zgkWFnxLrLCq", ["amount", "discount_amount"]] \
        .tolist() == [900, 100]
    assert mapped.loc["stripe:il_second", ["amount", "discount_amount"]].tolist() == [2700, 300]


def test_stripes_example_credit_note_lines_carry_their_discount_and_unknown_tax():
    # two lines: 1190 on an invoice line (tax_rates stated, taxes null) and a 500 custom line
    notes = map_credit_notes([FIXTURES["credit_note"]]).set_index("credit_note_id")
    first = notes.loc["stripe:cn_1Pgc75B7WZ01zgkWJMPt5riP:cnli_1Pgc75B7WZ01zgkWla6u0GdZ"]
    assert first["amount"] == 1190 and first["discount_amount"] == 0
    assert first["invoice_line_id"] == "stripe:il_1Pgc74B7WZ01zgkWWh45tUBA"
    assert pd.isna(first["tax_amount"])
    custom = notes.loc["stripe:cn_1Pgc75B7WZ01zgkWJMPt5riP:cnli_1Pgc75B7WZ01zgkW9m0EaOVh"]
    assert custom["amount"] == 500 and pd.isna(custom["invoice_line_id"])
    # a line's discount credited back comes off what it credits
    note = copy.deepcopy(FIXTURES["credit_note"])
    note["lines"]["data"][0]["discount_amount"] = 190
    first = map_credit_notes([note]).set_index("credit_note_id").iloc[0]
    assert (first["amount"], first["discount_amount"]) == (1000, 190)


def test_stripes_example_refund_naming_only_a_charge_finds_its_invoice_payment():
    # Stripe's example refund has payment_intent null and names charge ch_1PgafuB7WZ01zgkW...;
    # the invoice payment made by that charge (the fixture's invoice_payment shape, paid)
    refund = FIXTURES["refund"]
    payment = dict(copy.deepcopy(FIXTURES["invoice_payment"]), id="inpay_1", status="paid",
                   invoice="in_1Pgc6tB7WZ01zgkWu9fdqL6I",
                   payment={"type": "charge", "charge": refund["charge"]})
    mapped = map_refunds([refund], [payment]).iloc[0]
    assert mapped["refund_id"] == "stripe:re_1Pgc72B7WZ01zgkWqPvrRrPE"
    assert mapped["invoice_id"] == "stripe:in_1Pgc6tB7WZ01zgkWu9fdqL6I"
    assert mapped["payment_id"] == "stripe:inpay_1" and mapped["amount"] == 100


def test_a_saved_list_page_with_more_after_it_is_refused_not_landed_short(tmp_path):
    # a /v1/invoices page saved as received, has_more true: 1 invoice of however many
    import pytest

    from q2c_pipeline.sources.snapshot import IncompleteSnapshot, SnapshotSource

    folder = tmp_path / "stripe"
    folder.mkdir()
    page = {"object": "list", "url": "/v1/invoices", "has_more": True,
            "data": [FIXTURES["invoice"]]}
    (folder / "invoices.json").write_text(json.dumps(page))
    with pytest.raises(IncompleteSnapshot) as refused:
        SnapshotSource(tmp_path).billing_objects("invoices")
    message = str(refused.value)
    assert "invoices.json" in message and "[incomplete_page]" in message
    assert "1 here" in message
    # the last page (has_more false) is the whole list
    page["has_more"] = False
    (folder / "invoices.json").write_text(json.dumps(page))
    assert [i["id"] for i in SnapshotSource(tmp_path).billing_objects("invoices")] == [
        "in_1Pgc6tB7WZ01zgkWu9fdqL6I"]


def test_expanded_ids_and_stripes_own_link_win_over_metadata():
    # expand[]=payment_intent renders the object in place of its id; and Stripe's link (the
    # invoice payment) is believed over a stale metadata.invoice_id
    refund = dict(FIXTURES["refund"], charge=None,
                  payment_intent={"id": "pi_1", "object": "payment_intent"},
                  metadata={"invoice_id": "in_OTHER"})
    payment = dict(copy.deepcopy(FIXTURES["invoice_payment"]), id="inpay_1", status="paid",
                   invoice="in_1", payment={"type": "payment_intent",
                                            "payment_intent": {"id": "pi_1"}})
    mapped = map_refunds([refund], [payment]).iloc[0]
    assert (mapped["invoice_id"], mapped["payment_id"]) == ("stripe:in_1", "stripe:inpay_1")


def test_a_credit_note_without_lines_credits_its_subtotal_less_its_discount():
    note = dict(copy.deepcopy(FIXTURES["credit_note"]), subtotal=1000, discount_amount=100,
                total_taxes=[])
    note["lines"] = {"data": [], "has_more": False, "object": "list"}
    mapped = map_credit_notes([note]).iloc[0]
    assert (mapped["amount"], mapped["discount_amount"], mapped["tax_amount"]) == (900, 100, 0)


def test_an_invoice_discount_is_not_spread_over_lines_when_some_lines_are_missing():
    # lines has_more: the third line (and its discount) is not here; the two embedded lines
    # keep their own discounts (the source tie-out then shows the invoice as not tied)
    invoice = copy.deepcopy(FIXTURES["invoice"])
    line = invoice["lines"]["data"][0]
    line.update(taxes=[], discount_amounts=[{"amount": 100, "discount": "di_1"}])
    invoice["lines"]["data"].append(dict(copy.deepcopy(line), id="il_two"))
    invoice["lines"]["has_more"] = True
    invoice["total_discount_amounts"] = [{"amount": 300, "discount": "di_1"}]
    mapped = map_invoice_lines([invoice])
    assert mapped["discount_amount"].tolist() == [100, 100]
    assert mapped["amount"].tolist() == [900, 900]


def _pre_basil(invoice: dict) -> dict:
    """Stripe's example invoice as an account on 2024-06-20 renders it (docs.stripe.com/
    changelog/basil: line `price` and `tax_amounts`, invoice `total_tax_amounts`)."""
    old = copy.deepcopy(invoice)
    for line in old["lines"]["data"]:
        details = (line.pop("pricing") or {}).get("price_details") or {}
        line["price"] = {"id": details.get("price"), "product": details.get("product")}
        line.pop("taxes", None)
        line["tax_amounts"] = []
    old.pop("total_taxes", None)
    old["total_tax_amounts"] = []
    return old


def test_stripes_own_objects_in_the_pinned_shape_carry_no_shape_problem():
    assert map_invoices([FIXTURES["invoice"]])["_shape_problem"].isna().all()
    assert map_credit_notes([FIXTURES["credit_note"]])["_shape_problem"].isna().all()


def test_an_invoice_in_an_older_api_versions_shape_is_quarantined_not_misread():
    invoices = map_invoices([_pre_basil(FIXTURES["invoice"])])
    problem = invoices["_shape_problem"].iloc[0]
    assert "before 2025-03-31.basil" in problem and "total_tax_amounts" in problem
    assert "price, not pricing.price_details" in problem
    note = copy.deepcopy(FIXTURES["credit_note"])
    note.pop("total_taxes", None)
    note["tax_amounts"] = []
    assert map_credit_notes([note])["_shape_problem"].notna().all()
    # through validation: the invoice is held with the rule and its reason
    company = canonical_company()
    company["invoices"] = company["invoices"].assign(_shape_problem=None)
    company["invoices"].loc[0, "_shape_problem"] = problem
    result = validate_canonical(company)
    held = result.quarantine[result.quarantine["rule"] == "unsupported_api_version"]
    assert list(held["source_table"]) == ["invoices"]
    assert held["owner"].iloc[0] == "billing_ops"
    assert "retrieve it again at that version" in held["reason"].iloc[0]


ACACIA = json.loads((Path(__file__).parents[1] / "fixtures" / "stripe_openapi"
                     / "fixtures3_acacia.json").read_text())["resources"]


def test_stripes_own_acacia_invoice_and_credit_note_are_refused_by_shape_not_misread():
    # what an event created under an account on an acacia default version carries: its line has
    # `price` and `tax_amounts`, the invoice `total_tax_amounts`
    problem = map_invoices([ACACIA["invoice"]])["_shape_problem"].iloc[0]
    assert problem.startswith("invoice 'in_1Pgc6tB7WZ01zgkWu9fdqL6I' is in the shape of a "
                              "Stripe API version before 2025-03-31.basil")
    assert map_credit_notes([ACACIA["credit_note"]])["_shape_problem"].notna().all()


def test_stripes_example_prices_rate_usage_as_their_fields_say():
    from q2c_pipeline.sources.billing import map_usage_prices
    from q2c_pipeline.sources.usage_pricing import price_from_json

    products = [{"id": "prod_QXg1hqf4jFNsqG", "metadata": {"sf_product_code": "API-CALLS"}}]
    # dahlia's example: 2,000 per package of 1,592,560,163 units, rounded down, and a
    # custom_unit_amount whose fields are all null (no custom amount); acacia's: 2,000 a unit
    cases = ((FIXTURES, 2 * 1_592_560_163 + 5, 2 * 2000), (ACACIA, 3, 3 * 2000))
    for fixtures, quantity, expected in cases:
        price = {**fixtures["price"], "recurring": {**fixtures["price"]["recurring"],
                                                   "usage_type": "metered"}}
        (row,) = map_usage_prices([price], products).to_dict("records")
        assert row["problem"] is None
        assert price_from_json(row["pricing"]).amount([quantity]).tolist() == [expected]


def test_the_meter_objects_stripe_publishes_are_the_shapes_the_extraction_lands():
    for fixtures in (FIXTURES, ACACIA):
        summary = fixtures["billing.meter_event_summary"]
        assert {"aggregated_value", "start_time", "end_time", "meter"} <= set(summary)
        assert "customer" not in summary  # Stripe names no customer: the extraction adds it
        assert fixtures["billing.meter"]["default_aggregation"]["formula"] == "sum"


def test_a_decimal_quantity_is_read_whole_not_truncated():
    invoice = copy.deepcopy(FIXTURES["invoice"])
    invoice["lines"]["data"][0].update(quantity=3, quantity_decimal="3.75")
    assert map_invoice_lines([invoice])["quantity"].iloc[0] == 3.75


def _expanded(obj_id: str, kind: str) -> dict:
    """What ``expand[]`` renders in place of an id: the object itself (its id inside)."""
    return {"id": obj_id, "object": kind}


def test_every_expandable_reference_reads_the_same_expanded_as_unexpanded():
    """Stripe's expand[] puts the object where the id was: the invoice's customer, a line's
    product, a credit note's invoice and customer, an invoice payment's invoice. Each maps to
    exactly the row its unexpanded twin gives (an object there once crashed the close)."""
    customers = canonical_company()["customers"]
    billing_id = customers["billing_customer_id"].dropna().iloc[0].removeprefix("stripe:")
    invoice = dict(copy.deepcopy(FIXTURES["invoice"]), customer=billing_id)
    line = invoice["lines"]["data"][0]
    line["pricing"] = {"type": "price_details", "unit_amount_decimal": None,
                       "price_details": {"price": "price_1", "product": "prod_1"}}
    expanded = copy.deepcopy(invoice)
    expanded["customer"] = _expanded(billing_id, "customer")
    expanded["lines"]["data"][0]["pricing"]["price_details"]["product"] = _expanded(
        "prod_1", "product")
    products = [{"id": "prod_1", "object": "product", "metadata": {"product_code": "PLAT-SEAT"}}]
    plain_rows = map_invoices([invoice], customers)
    assert plain_rows.iloc[0]["customer_id"] is not None
    pd.testing.assert_frame_equal(map_invoices([expanded], customers).drop(columns=["_payload"]),
                                  plain_rows.drop(columns=["_payload"]))
    plain_lines = map_invoice_lines([invoice], products)
    pd.testing.assert_frame_equal(
        map_invoice_lines([expanded], products).drop(columns=["_payload"]),
        plain_lines.drop(columns=["_payload"]))

    note = dict(copy.deepcopy(FIXTURES["credit_note"]), customer=billing_id)
    expanded_note = dict(copy.deepcopy(note), invoice=_expanded(note["invoice"], "invoice"),
                         customer=_expanded(billing_id, "customer"))
    plain = map_credit_notes([note], [invoice], customers).drop(columns=["_payload"])
    assert plain["invoice_id"].tolist() == ["stripe:in_1Pgc75B7WZ01zgkWYv4iMwt7"] * 2
    pd.testing.assert_frame_equal(
        map_credit_notes([expanded_note], [invoice], customers).drop(columns=["_payload"]),
        plain)

    payment = dict(copy.deepcopy(FIXTURES["invoice_payment"]), status="paid",
                   invoice=invoice["id"])
    expanded_payment = dict(copy.deepcopy(payment),
                            invoice=_expanded(invoice["id"], "invoice"))
    plain = map_payments([payment], [invoice], customers).drop(columns=["_payload"])
    assert plain.iloc[0]["invoice_id"] == f"stripe:{invoice['id']}"
    assert plain.iloc[0]["customer_id"] is not None
    pd.testing.assert_frame_equal(
        map_payments([expanded_payment], [invoice], customers).drop(columns=["_payload"]),
        plain)


def test_a_record_no_mapper_rule_foresaw_is_quarantined_and_the_others_map():
    """An invoice whose ``lines`` is text (no rule expects that): the mappers' guard maps
    every other invoice and quarantines this one with its payload and the error named."""
    from q2c_pipeline.sources.assemble import UNMAPPABLE, guarded

    good = copy.deepcopy(FIXTURES["invoice"])
    bad = dict(copy.deepcopy(FIXTURES["invoice"]), id="in_broken", lines="see attachment")
    lines = guarded("invoice_lines", "stripe", map_invoice_lines, [good, bad], [])
    assert len(lines) == 2
    held = lines[lines["invoice_line_id"] == "stripe:in_broken"].iloc[0]
    [(rule, field, words)] = held["_field_problems"]
    assert (rule, field) == (UNMAPPABLE, "(record)")
    assert "stripe record 'in_broken'" in words and "AttributeError" in words
    assert json.loads(held["_payload"])["lines"] == "see attachment"
    result = validate_canonical({"invoice_lines": lines})
    quarantined = result.quarantine
    assert quarantined.loc[quarantined["record_id"] == "stripe:in_broken", "rule"].tolist() \
        == [UNMAPPABLE]
    assert len(result.accepted["invoice_lines"]) + len(quarantined) == 2


def test_a_subscription_line_of_a_contract_invoice_must_name_its_contract_line():
    """Stripe's example line billing a subscription item, on an invoice naming a Salesforce
    contract: without metadata.sf_subscription_id it would be recognized as a sale of its own
    beside the contract line (revenue twice), so it is held; with it, it only bills."""
    invoice = copy.deepcopy(FIXTURES["invoice"])
    invoice["metadata"] = {"sf_contract_id": "800Hp000007qBvkIAE"}
    line = invoice["lines"]["data"][0]
    line["parent"]["type"] = "subscription_item_details"
    line["taxes"] = []
    [problem] = map_invoice_lines([invoice]).iloc[0]["_field_problems"]
    assert problem[:2] == ("missing_value", "metadata.sf_subscription_id")
    assert "'subscription_item'" in problem[2] and "sf:800Hp000007qBvkIAE" in problem[2]
    line["metadata"] = {"sf_subscription_id": "a0XHp00000FMaCUMA1"}
    linked = map_invoice_lines([invoice]).iloc[0]
    assert linked.get("_field_problems") is None
    assert linked["contract_line_id"] == "sf:a0XHp00000FMaCUMA1"
    # a one-off invoice item on the same invoice is a sale of its own
    line["parent"]["type"], line["metadata"] = "invoice_item_details", {}
    assert map_invoice_lines([invoice]).iloc[0].get("_field_problems") is None


def test_a_canonical_override_of_an_unread_column_settles_that_problem_only(tmp_path):
    """Stripe's example line states no taxes (null): held as missing_value on 'taxes'. An
    override of the canonical tax_amount (a line is embedded in its invoice: its own fields
    are not a landed record) settles that problem and only that one; had the record stayed
    held for another rule, overrides_applied would say so rather than just "applied"."""
    import duckdb

    from q2c_pipeline.close.decisions import record_decision
    from q2c_pipeline.close.exceptions import apply_canonical_overrides, still_held

    invoice = copy.deepcopy(FIXTURES["invoice"])
    lines = map_invoice_lines([invoice])
    assert [p[:2] for p in lines.iloc[0]["_field_problems"]] == [("missing_value", "taxes")]
    payload = lines.iloc[0]["_payload"]
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    record_decision(conn, actor="bo.billing@q2c.example", role="billing_ops",
                    action="override", reason="no tax on this line (Stripe dashboard)",
                    exception={"exception_id": "e1", "source_table": "invoice_lines",
                               "record_id": "stripe:il_1Pgc6sB7WZ01zgkWFnxLrLCq"},
                    detail={"target": "canonical", "source_table": "invoice_lines",
                            "record_id": "stripe:il_1Pgc6sB7WZ01zgkWFnxLrLCq",
                            "payload_sha256": hashlib.sha256(payload.encode()).hexdigest(),
                            "set": {"tax_amount": 0}})
    candidates = {"invoice_lines": lines}
    applied = apply_canonical_overrides(conn, candidates)
    line = candidates["invoice_lines"].iloc[0]
    assert line["tax_amount"] == 0 and line["_field_problems"] is None
    assert applied["status"].tolist() == ["applied"]
    held = pd.DataFrame([{"record_id": "stripe:il_1Pgc6sB7WZ01zgkWFnxLrLCq",
                          "rule": "unknown_invoice", "field": "invoice_id"}])
    assert still_held(applied, held)["status"].tolist() == [
        "applied; the record is still held: unknown_invoice (invoice_id)"]
