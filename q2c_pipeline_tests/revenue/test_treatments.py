"""One hand-computed case per row of the treatment table (q2c_pipeline/revenue/treatments.csv),
on a revenue contract (contract_builders: 12,000.00 for 2026, 1,000.00 a month, month_even,
10% tax on top of every invoice).

Each test names the row it pins; DECISIONLOG.md "The treatment table" explains each row and
cites the standard.
"""

from datetime import date

import pandas as pd
import pytest

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline.revenue.treatments import load_treatments
from q2c_pipeline_tests.revenue.builders import T, company, frames, with_catalog
from q2c_pipeline_tests.revenue.contract_builders import (
    MONTH,
    POLICY,
    TAX,
    annual_invoice,
    closing,
    contract_line,
    monthly_invoices,
    movements,
    postings,
    revenue_by_period,
    tables,
    versions,
)

DEC = date(2026, 12, 31)
TWELVE = {f"2026-{m:02d}": MONTH for m in range(1, 13)}


def _credit(cid, when, invoice, line, amount, tax, reason, voided=None):
    return {"credit_note_id": cid, "issued_at": T(when), "amount": amount, "currency": "USD",
            "invoice_id": invoice, "invoice_line_id": line, "tax_amount": tax,
            "reason": reason, "voided_at": T(voided) if voided else pd.NaT}


def test_every_row_of_the_treatment_table_is_pinned_by_a_test_here():
    # why: a row nobody tested is a treatment nobody checked; the test names carry the rows
    names = " ".join(name for name in globals() if name.startswith("test_"))
    for row in load_treatments().rows.values():
        tag = f"{row.event}_{row.reason if row.reason != '*' else 'any'}_{row.contract_kind}"
        tag = tag.replace("*", "any")
        assert tag in names, f"no test for treatment row {row.event}/{row.reason}/" \
                             f"{row.contract_kind}"


# -- billing ----------------------------------------------------------------------------------
def test_invoice_line_any_any_billing_moves_the_position_and_never_revenue():
    # January's invoice: Dr AR 1,100.00 / Cr DeferredRevenue 1,000.00 / Cr Tax 100.00; the
    # month's recognition then releases the 1,000.00: revenue follows the contract line only.
    invoices, lines = monthly_invoices([1])
    result = run_engine(tables(invoices=invoices, invoice_lines=lines), POLICY, DEC)
    assert postings(result, "invoice") == {"AccountsReceivable": (110_000, 0),
                                           "DeferredRevenue": (0, MONTH),
                                           "TaxLiability": (0, TAX)}
    assert revenue_by_period(result) == TWELVE
    # billed only January: February on is revenue ahead of billing, an unbilled receivable
    assert closing(result, "2026-12")["UnbilledAccountsReceivable"] == 11 * MONTH


# -- billing corrections -----------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["duplicate", "fraudulent"])
def test_credit_note_duplicate_contract_and_credit_note_fraudulent_contract_are_billing_corrections(
        reason):
    # March billed twice (in_3 and in_3x); a credit note cancels in_3x in full on 2026-03-05.
    # A billing correction: Dr DeferredRevenue 1,000.00, Dr Tax 100.00, Cr AR 1,100.00; no
    # contra revenue, the schedule untouched (12 x 1,000.00).
    invoices, lines = monthly_invoices(range(1, 13))
    dup_inv, dup_lines = monthly_invoices([3], prefix="inx")
    notes = [_credit("cn_1", "2026-03-05", "inx_3", "il_inx_3", MONTH, TAX, reason)]
    result = run_engine(tables(invoices=invoices + dup_inv, invoice_lines=lines + dup_lines,
                               credit_notes=notes), POLICY, DEC)
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 110_000),
                                               "DeferredRevenue": (MONTH, 0),
                                               "TaxLiability": (TAX, 0)}
    assert revenue_by_period(result) == TWELVE
    assert "CreditNotes" not in movements(result, "CreditNotes") or not movements(
        result, "CreditNotes")
    assert closing(result, "2026-12").get("DeferredRevenue", 0) == 0


def test_invoice_void_any_contract_is_a_billing_correction_with_no_revenue_effect():
    # The duplicated March invoice is voided on 2026-03-05 instead: Dr DeferredRevenue
    # 1,000.00, Dr Tax 100.00, Cr AR 1,100.00; no Voids, revenue 12 x 1,000.00, and no future
    # month loses revenue.
    invoices, lines = monthly_invoices(range(1, 13))
    dup_inv, dup_lines = monthly_invoices([3], prefix="inx")
    events = [{"invoice_id": "inx_3", "occurred_at": T("2026-03-05"), "event": "void"}]
    result = run_engine(tables(invoices=invoices + dup_inv, invoice_lines=lines + dup_lines,
                               invoice_events=events), POLICY, DEC)
    assert postings(result, "invoice_void") == {"AccountsReceivable": (0, 110_000),
                                                "DeferredRevenue": (MONTH, 0),
                                                "TaxLiability": (TAX, 0)}
    assert movements(result, "Voids") == {}
    assert revenue_by_period(result) == TWELVE


def test_a_duplicate_billing_beyond_the_contract_price_is_a_refund_liability_until_corrected():
    # Billed 12,000.00 up front twice: 24,000.00 billed on a 12,000.00 contract, so 12,000.00
    # is owed back (RefundLiability), not deferred revenue; the duplicate's void clears it.
    inv, items = annual_invoice()
    dup = [{**inv[0], "invoice_id": "in_dup"}]
    dup_items = [{**items[0], "invoice_line_id": "il_dup", "invoice_id": "in_dup"}]
    events = [{"invoice_id": "in_dup", "occurred_at": T("2026-01-20"), "event": "void"}]
    kept = tables(invoices=inv + dup, invoice_lines=items + dup_items)
    before_void = run_engine(kept, POLICY, date(2026, 1, 15))
    assert closing(before_void, "2026-01")["RefundLiability"] == 12 * MONTH
    assert closing(before_void, "2026-01")["DeferredRevenue"] == 11 * MONTH
    result = run_engine({**kept, "invoice_events": pd.DataFrame(events)}, POLICY, DEC)
    assert postings(result, "invoice_void") == {"AccountsReceivable": (0, 1_320_000),
                                                "RefundLiability": (12 * MONTH, 0),
                                                "TaxLiability": (12 * TAX, 0)}
    assert closing(result, "2026-12").get("RefundLiability", 0) == 0
    assert revenue_by_period(result) == TWELVE


# -- cancellation: the unused part to a refund liability, settled by a credit note or a refund
def _cancelled_from_july(**extra):
    """Billed 12,000.00 + 1,200.00 tax up front on 2026-01-01 and paid on 01-05; cancelled from
    2026-07-01 by an amendment signed 2026-06-25 (a CPQ delta of -6,000.00 for July..December)."""
    inv, items = annual_invoice()
    lines = [contract_line(),
             contract_line("L1c", -6 * MONTH, start="2026-07-01", revises="L1",
                           effective="2026-07-01", quantity=-1.0)]
    paid = [{"payment_id": "py_1", "paid_at": T("2026-01-05"), "amount": 1_320_000,
             "currency": "USD", "invoice_id": "in_year"}]
    return tables(lines, versions(("2026-06-25", "2026-07-01")), inv, items, payments=paid,
                  **extra)


def test_cancellation_leaves_no_revenue_after_its_effective_date_and_the_unused_part_is_owed():
    # ASC 606-10-25-13(a): at 2026-07-01 6,000.00 is unrecognized and the amendment promises
    # -6,000.00: nothing remains to spread. The 6,000.00 billed for July..December is no longer
    # consideration the contract keeps: DeferredRevenue -> RefundLiability on 2026-07-01.
    result = run_engine(_cancelled_from_july(), POLICY, DEC)
    assert revenue_by_period(result) == {f"2026-{m:02d}": MONTH for m in range(1, 7)}
    assert postings(result, "contract_position") == {"DeferredRevenue": (6 * MONTH, 0),
                                                     "RefundLiability": (0, 6 * MONTH)}
    assert closing(result, "2026-12")["RefundLiability"] == 6 * MONTH
    assert "DeferredRevenue" not in closing(result, "2026-12")


def test_credit_note_order_change_contract_settles_the_refund_liability_and_cuts_no_revenue():
    # The credit note for the unused six months (6,000.00 + 600.00 tax, 2026-07-10) settles the
    # refund liability: Dr RefundLiability 6,000.00, Dr Tax 600.00, Cr AR 6,600.00 - no contra
    # revenue, revenue stays at 6 x 1,000.00. The paid invoice leaves the customer 6,600.00 in
    # credit at the July month end (AR -> CustomerCredit, reversed on 1 August).
    notes = [_credit("cn_1", "2026-07-10", "in_year", "il_year", 6 * MONTH, 6 * TAX,
                     "order_change")]
    result = run_engine(_cancelled_from_july(credit_notes=notes), POLICY, DEC)
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 660_000),
                                               "RefundLiability": (6 * MONTH, 0),
                                               "TaxLiability": (6 * TAX, 0)}
    assert movements(result, "CreditNotes") == {}
    assert sum(revenue_by_period(result).values()) == 6 * MONTH
    july = closing(result, "2026-07")
    assert july.get("RefundLiability", 0) == 0 and july["CustomerCredit"] == 660_000
    assert july.get("AccountsReceivable", 0) == 0


def test_refund_credit_note_any_moves_cash_only():
    # ... and a refund that settles that credit note (2026-07-15) moves cash only: Dr AR
    # 6,600.00 / Cr Cash 6,600.00 - the credit note already reduced the invoice.
    notes = [_credit("cn_1", "2026-07-10", "in_year", "il_year", 6 * MONTH, 6 * TAX,
                     "order_change")]
    refunds = [{"refund_id": "re_1", "invoice_id": "in_year", "refunded_at": T("2026-07-15"),
                "amount": 660_000, "currency": "USD", "credit_note_id": "cn_1"}]
    result = run_engine(_cancelled_from_july(credit_notes=notes, refunds=refunds), POLICY, DEC)
    assert postings(result, "refund") == {"AccountsReceivable": (660_000, 0),
                                          "Cash": (0, 660_000)}
    end = closing(result, "2026-12")
    assert end["Cash"] == 1_320_000 - 660_000 and end["Revenue"] == 6 * MONTH
    assert "CustomerCredit" not in end and "AccountsReceivable" not in end
    assert end["TaxLiability"] == 6 * TAX


def test_refund_any_contract_settles_the_refund_liability_without_a_second_reduction():
    # The everyday flow without a credit note: refund of the unused part (6,600.00 on
    # 2026-07-15) settles the refund liability: Dr RefundLiability 6,000.00, Dr Tax 600.00,
    # Cr Cash 6,600.00. Revenue is reduced once (by the cancellation), never twice.
    refunds = [{"refund_id": "re_1", "invoice_id": "in_year", "refunded_at": T("2026-07-15"),
                "amount": 660_000, "currency": "USD"}]
    result = run_engine(_cancelled_from_july(refunds=refunds), POLICY, DEC)
    assert postings(result, "refund") == {"Cash": (0, 660_000),
                                          "RefundLiability": (6 * MONTH, 0),
                                          "TaxLiability": (6 * TAX, 0)}
    assert movements(result, "Refunds") == {}
    end = closing(result, "2026-12")
    assert end["Revenue"] == 6 * MONTH and "RefundLiability" not in end
    assert "DeferredRevenue" not in end


def test_a_refund_beyond_the_refund_liability_is_a_price_concession_for_the_rest():
    # Refunding 7,700.00 (7,000.00 + 700.00 tax) after the cancellation: 6,000.00 settles the
    # refund liability; the other 1,000.00 is a price concession on the billed period
    # (2026: 6,000.00 of the remaining 6,000.00 of schedule was earned, all of it recognized)
    # -> contra revenue Refunds 1,000.00.
    refunds = [{"refund_id": "re_1", "invoice_id": "in_year", "refunded_at": T("2026-07-15"),
                "amount": 770_000, "currency": "USD"}]
    result = run_engine(_cancelled_from_july(refunds=refunds), POLICY, DEC)
    assert postings(result, "refund") == {"Cash": (0, 770_000),
                                          "RefundLiability": (6 * MONTH, 0),
                                          "Refunds": (MONTH, 0),
                                          "TaxLiability": (7 * TAX, 0)}
    end = closing(result, "2026-12")
    assert end["Revenue"] - end["Refunds"] == 5 * MONTH


# -- price changes on a contract: the billed obligation and period -----------------------------
def test_credit_note_product_unsatisfactory_contract_reduces_only_the_credited_period():
    # ASC 606-10-32-42..44: half of March credited (500.00 + 50.00 tax) on 2026-03-05, before
    # payment. The window is March: by the 5th, 4 of its 31 days were served, so the window had
    # earned 1,000.00 x 4/31 = 129.03: recognized share 500.00 x 129.03/1,000.00 = 64.52
    # (CreditNotes), deferred share 435.48 off the rest of March: March 1,000.00 -> 564.52.
    # April..December keep 1,000.00: the rest of the contract is untouched.
    invoices, lines = monthly_invoices(range(1, 13))
    notes = [_credit("cn_1", "2026-03-05", "in_3", "il_in_3", 50_000, 5_000,
                     "product_unsatisfactory")]
    result = run_engine(tables(invoices=invoices, invoice_lines=lines, credit_notes=notes),
                        POLICY, DEC)
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 55_000),
                                               "CreditNotes": (6_452, 0),
                                               "DeferredRevenue": (43_548, 0),
                                               "TaxLiability": (5_000, 0)}
    assert revenue_by_period(result) == {**TWELVE, "2026-03": 56_452}
    alloc = result.allocation.set_index("contract_line_id").loc["L1"]
    assert alloc["allocated_amount"] - alloc["deferred_reductions"] == 12 * MONTH - 43_548
    end = closing(result, "2026-12")
    assert end["Revenue"] - end["CreditNotes"] == 12 * MONTH - 50_000


def test_credit_note_any_contract_issued_before_its_period_starts_takes_it_all_off_that_period():
    # A 300.00 goodwill credit on April's invoice, issued 2026-04-01 (nothing of April served):
    # no contra revenue; April 1,000.00 -> 700.00; the other months unchanged.
    invoices, lines = monthly_invoices(range(1, 13))
    notes = [_credit("cn_1", "2026-04-01", "in_4", "il_in_4", 30_000, 3_000, None)]
    result = run_engine(tables(invoices=invoices, invoice_lines=lines, credit_notes=notes),
                        POLICY, DEC)
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 33_000),
                                               "DeferredRevenue": (30_000, 0),
                                               "TaxLiability": (3_000, 0)}
    assert revenue_by_period(result) == {**TWELVE, "2026-04": 70_000}


def test_a_treatment_override_allocates_a_concession_over_the_whole_contract_by_ssp():
    # ASC 606-10-32-43 by a table override (credit_note/goodwill/contract -> allocation
    # contract): seats 12,000.00 for 2026 and onboarding 2,000.00 (delivered 2026-01-01); a
    # goodwill credit of 1,400.00 on 2026-07-01 splits 12,000 : 2,000 -> seats 1,200.00,
    # onboarding 200.00. Seats had earned half: 600.00 contra, 600.00 off July..December
    # (1,000.00 -> 900.00); onboarding had earned all: 200.00 contra. Contra 800.00 in all.
    lines = [contract_line(), contract_line("L2", 200_000, end=None, pattern="point_in_time",
                                            product="ONBOARD")]
    invoices, items = monthly_invoices(range(1, 13))
    notes = [_credit("cn_1", "2026-07-01", "in_7", "il_in_7", 140_000, 0, "goodwill")]
    override = pd.DataFrame([{"event": "credit_note", "reason": "goodwill",
                              "contract_kind": "contract", "effect": "price_change",
                              "allocation": "contract", "account": "CreditNotes",
                              "standard": "ASC 606-10-32-43", "rule": "goodwill: whole contract"}])
    result = run_engine(tables(lines, invoices=invoices, invoice_lines=items,
                               credit_notes=notes), POLICY, DEC, treatments=override)
    assert postings(result, "credit_note")["CreditNotes"] == (80_000, 0)
    seats = revenue_by_period(result, "L1")
    assert [seats[f"2026-{m:02d}"] for m in range(6, 13)] == [MONTH] + [90_000] * 6
    assert revenue_by_period(result, "L2") == {"2026-01": 200_000}


# -- invoice-based obligations (Stripe's methodology): proportional at day precision -----------
def _stripe_line(amount=9_000, start="2026-01-01", end="2026-04-01", **extra):
    """A 90.00 invoice line for 2026-01-01..04-01 (90 days: 1.00 a day) with no contract."""
    return {**company(), **frames(
        invoices=[{"invoice_id": "in_1", "customer_id": "K1", "currency": "USD",
                               "finalized_at": T(start), "status": "open",
                               "correlation_id": "in_1"}],
                    invoice_lines=[{"invoice_line_id": "il_1", "invoice_id": "in_1",
                                    "amount": amount, "tax_amount": 0, "tax_inclusive": False,
                                    "service_start": T(start), "service_end": T(end)}],
                    **extra)}


DAY = Policy(amortization="day")


def test_credit_note_any_invoice_splits_the_credit_by_what_was_served():
    # Stripe "credit notes": 45.00 credited on 2026-02-01 of 90.00: 31 of 90 days served ->
    # 45.00 x 31/90 = 15.50 CreditNotes, 29.50 off February and March in proportion
    # (28.00 -> 14.00, 31.00 -> 15.50).
    notes = [_credit("cn_1", "2026-02-01", "in_1", "il_1", 4_500, 0, None)]
    result = run_engine(_stripe_line(credit_notes=notes), DAY, date(2026, 3, 31))
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 4_500),
                                               "CreditNotes": (1_550, 0),
                                               "DeferredRevenue": (2_950, 0)}
    assert revenue_by_period(result, "il_1") == {"2026-01": 3_100, "2026-02": 1_400,
                                                 "2026-03": 1_550}


def test_refund_any_invoice_and_invoice_void_any_invoice_clear_what_was_deferred():
    # Stripe "contra": a full refund (Refunds 31.00) or a void (Voids 31.00) on 2026-02-01
    # clears the 59.00 still deferred; nothing is recognized afterwards.
    paid = [{"payment_id": "py_1", "paid_at": T("2026-01-01"), "amount": 9_000,
             "currency": "USD", "invoice_id": "in_1"}]
    refunds = [{"refund_id": "re_1", "invoice_id": "in_1", "refunded_at": T("2026-02-01"),
                "amount": 9_000, "currency": "USD"}]
    refunded = run_engine(_stripe_line(payments=paid, refunds=refunds), DAY, date(2026, 3, 31))
    assert postings(refunded, "refund") == {"Cash": (0, 9_000), "Refunds": (3_100, 0),
                                            "DeferredRevenue": (5_900, 0)}
    events = [{"invoice_id": "in_1", "occurred_at": T("2026-02-01"), "event": "void"}]
    voided = run_engine(_stripe_line(invoice_events=events), DAY, date(2026, 3, 31))
    assert postings(voided, "invoice_void") == {"AccountsReceivable": (0, 9_000),
                                                "Voids": (3_100, 0),
                                                "DeferredRevenue": (5_900, 0)}
    for result in (refunded, voided):
        assert revenue_by_period(result, "il_1") == {"2026-01": 3_100}


# -- usage and customer-level credits: recognized already, contra in full ----------------------
def _usage_billed(**extra):
    """500.00 of usage on 2026-01-10, billed 2026-02-01 on a usage line and paid on 02-05."""
    return with_catalog({**company(), **frames(
        usage=[{"usage_id": "u1", "occurred_at": T("2026-01-10"), "quantity": 25_000.0,
                "amount": 50_000, "currency": "USD", "customer_id": "K1",
                "invoice_line_id": "il_u"}],
        invoices=[{"invoice_id": "in_u", "customer_id": "K1", "currency": "USD",
                   "finalized_at": T("2026-02-01"), "status": "open", "correlation_id": "in_u"}],
        invoice_lines=[{"invoice_line_id": "il_u", "invoice_id": "in_u", "amount": 50_000,
                        "tax_amount": 0, "tax_inclusive": False, "product_code": "API",
                        "service_start": T("2026-01-01"), "service_end": T("2026-02-01")}],
        **extra)})


def test_credit_note_any_usage_refund_any_usage_and_invoice_void_any_usage_are_contra_in_full():
    # Usage is revenue when it occurs (500.00 in January): a credit (100.00), a refund
    # (100.00) or a void of its invoice (the whole 500.00) cannot defer anything: contra
    # revenue in full, the position untouched.
    notes = [_credit("cn_1", "2026-02-10", "in_u", "il_u", 10_000, 0, None)]
    paid = [{"payment_id": "py_1", "paid_at": T("2026-02-05"), "amount": 50_000,
             "currency": "USD", "invoice_id": "in_u"}]
    refunds = [{"refund_id": "re_1", "invoice_id": "in_u", "refunded_at": T("2026-02-10"),
                "amount": 10_000, "currency": "USD"}]
    voids = [{"invoice_id": "in_u", "occurred_at": T("2026-02-10"), "event": "void"}]
    cases = [("credit_note", dict(credit_notes=notes), "CreditNotes", 10_000),
             ("refund", dict(payments=paid, refunds=refunds), "Refunds", 10_000),
             ("invoice_void", dict(invoice_events=voids), "Voids", 50_000)]
    for source_type, extra, contra, amount in cases:
        result = run_engine(_usage_billed(**extra), Policy(), date(2026, 2, 28))
        got = postings(result, source_type)
        assert got[contra] == (amount, 0), source_type
        assert not any(a in got for a in ("DeferredRevenue", "UnbilledAccountsReceivable"))
        assert movements(result, "Revenue") == {"2026-01": 50_000}


def test_credit_note_any_customer_is_contra_revenue_when_issued_and_a_credit_balance_after():
    # A 50.00 credit to customer K1 naming no invoice (2026-03-03): Dr CreditNotes 50.00,
    # Cr AR 50.00. With nothing else open the customer is 50.00 in credit at the March month
    # end: AR -> CustomerCredit 50.00, reversed on 1 April.
    notes = [{"credit_note_id": "cn_c", "issued_at": T("2026-03-03"), "amount": 5_000,
              "currency": "USD", "invoice_id": None, "customer_id": "K1",
              "invoice_line_id": None, "tax_amount": 0, "reason": None, "voided_at": pd.NaT}]
    result = run_engine(tables(credit_notes=notes), POLICY, date(2026, 4, 30))
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 5_000),
                                               "CreditNotes": (5_000, 0)}
    assert closing(result, "2026-03")["CustomerCredit"] == 5_000
    assert "AccountsReceivable" not in closing(result, "2026-03")
    assert closing(result, "2026-04")["CustomerCredit"] == 5_000
    assert postings(result, "customer_credit")["CustomerCredit"] == (5_000, 10_000)


# -- voids, write-offs, payments ---------------------------------------------------------------
def test_credit_note_void_any_any_gives_back_each_month_and_catches_up_the_past_ones():
    # Stripe "credit note without line items", voided: 181.00 for 2026-01-01..07-01 (1.00 a
    # day), 90.50 credited on 02-01 (15.50 CreditNotes, every later month halved), voided on
    # 05-03: CreditNotes reversed (-15.50), AR restored (+90.50); May and June get their halves
    # back and the halves cut from February..April (14.00 + 15.50 + 15.00 = 44.50) are
    # recognized in May: May 31.00 + 44.50 = 75.50, June 30.00.
    notes = [_credit("cn_1", "2026-02-01", "in_1", None, 9_050, 0, None, voided="2026-05-03")]
    result = run_engine(_stripe_line(18_100, end="2026-07-01", credit_notes=notes), DAY,
                        date(2026, 6, 30))
    assert revenue_by_period(result, "il_1") == {
        "2026-01": 3_100, "2026-02": 1_400, "2026-03": 1_550, "2026-04": 1_500,
        "2026-05": 7_550, "2026-06": 3_000}
    assert movements(result, "CreditNotes") == {"2026-02": 1_550, "2026-05": -1_550}
    assert movements(result, "AccountsReceivable") == {"2026-01": 18_100, "2026-02": -9_050,
                                                       "2026-05": 9_050}
    assert movements(result, "DeferredRevenue")["2026-05"] == 7_500 - 7_550


def test_uncollectible_any_any_writes_off_that_invoice_only():
    # Monthly billing; April's invoice (1,100.00) is never paid. Written off on 2026-05-20,
    # April has been served: credit loss 1,000.00 (CreditLossExpense, the default
    # presentation), tax relief 100.00, and May..December keep their 1,000.00 (the customer is
    # still paying for them). Written off on 2026-04-15 instead, 14 of April's 30 days were
    # served: 1,000.00 x 14/30 = 466.67, the 533.33 not yet earned comes off April's own
    # schedule; May..December still untouched.
    invoices, lines = monthly_invoices(range(1, 13))
    for when, loss, april in (("2026-05-20", MONTH, MONTH), ("2026-04-15", 46_667, 46_667)):
        events = [{"invoice_id": "in_4", "occurred_at": T(when), "event": "uncollectible"}]
        result = run_engine(tables(invoices=invoices, invoice_lines=lines,
                                   invoice_events=events), POLICY, DEC)
        got = postings(result, "uncollectible")
        assert got["AccountsReceivable"] == (0, 110_000) and got["TaxLiability"] == (TAX, 0)
        assert got["CreditLossExpense"] == (loss, 0), when
        assert "BadDebt" not in set(result.journal_lines["account"])
        assert revenue_by_period(result) == {**TWELVE, "2026-04": april}, when
        end = closing(result, "2026-12")
        assert end["Revenue"] - end["CreditLossExpense"] == 11 * MONTH


def test_bad_debt_presentation_contra_revenue_books_the_write_off_as_stripe_does():
    # policy bad_debt_presentation: contra_revenue (Stripe's presentation): the same write-off
    # goes to BadDebt, a contra-revenue account, never to CreditLossExpense.
    invoices, lines = monthly_invoices(range(1, 13))
    events = [{"invoice_id": "in_4", "occurred_at": T("2026-05-20"), "event": "uncollectible"}]
    policy = Policy(amortization="month_even", bad_debt_presentation="contra_revenue")
    result = run_engine(tables(invoices=invoices, invoice_lines=lines, invoice_events=events),
                        policy, DEC)
    assert postings(result, "uncollectible")["BadDebt"] == (MONTH, 0)
    assert "CreditLossExpense" not in set(result.journal_lines["account"])


def test_payment_any_any_settles_the_receivable_and_payment_after_write_off_any_reverses_bad_debt():
    # A payment settles: Dr Cash 1,100.00 / Cr AR 1,100.00. The written-off April invoice paid
    # in full on 2026-06-10: Dr Cash 1,100.00, Cr Tax 100.00 (the relief reversed), Cr credit loss
    # 1,000.00 (the credit loss reversed first), nothing left for Recoverables.
    invoices, lines = monthly_invoices(range(1, 13))
    events = [{"invoice_id": "in_4", "occurred_at": T("2026-05-20"), "event": "uncollectible"}]
    paid = [{"payment_id": "py_3", "paid_at": T("2026-03-05"), "amount": 110_000,
             "currency": "USD", "invoice_id": "in_3"},
            {"payment_id": "py_4", "paid_at": T("2026-06-10"), "amount": 110_000,
             "currency": "USD", "invoice_id": "in_4"}]
    result = run_engine(tables(invoices=invoices, invoice_lines=lines, invoice_events=events,
                               payments=paid), POLICY, DEC)
    assert postings(result, "payment") == {"Cash": (110_000, 0),
                                           "AccountsReceivable": (0, 110_000)}
    assert postings(result, "recovery") == {"Cash": (110_000, 0), "TaxLiability": (0, TAX),
                                            "CreditLossExpense": (0, MONTH)}
    end = closing(result, "2026-12")
    assert "CreditLossExpense" not in end and end["Revenue"] == 12 * MONTH


def test_payment_after_write_off_any_gives_back_the_deferred_share_and_catches_up_the_service():
    # An annual invoice (12,000.00 + 1,200.00 tax, 1,000.00 a month) written off on 2026-03-01:
    # Jan..Feb were served, so BadDebt 2,000.00; the 10,000.00 not yet earned comes off
    # March..December (1,000.00 each), tax relief 1,200.00. The customer then pays after all,
    # 6,600.00 on 05-01 and 6,600.00 on 06-01 (ASC 606-10-25-6 / 25-7: collectibility met
    # again; the service was delivered throughout):
    # - 05-01: tax share 6,600 x 1,200 / 13,200 = 600.00, pre-tax 6,000.00: the bad debt
    #   2,000.00 is reversed first, the 4,000.00 left goes back to the schedule (40% of each
    #   cut month, 400.00): March and April are caught up on 05-01 (800.00), May earns 400.00.
    # - 06-01: pre-tax 6,000.00 goes back in full (600.00 a month): March..May caught up on
    #   06-01 (1,800.00), June..December 1,000.00 again.
    # Revenue for 2026 = 12,000.00, nothing in BadDebt or Recoverables.
    inv, items = annual_invoice()
    events = [{"invoice_id": "in_year", "occurred_at": T("2026-03-01"), "event": "uncollectible"}]
    paid = [{"payment_id": "py_a", "paid_at": T("2026-05-01"), "amount": 660_000,
             "currency": "USD", "invoice_id": "in_year"},
            {"payment_id": "py_b", "paid_at": T("2026-06-01"), "amount": 660_000,
             "currency": "USD", "invoice_id": "in_year"}]
    result = run_engine(tables(invoices=inv, invoice_lines=items, invoice_events=events,
                               payments=paid), POLICY, DEC)
    assert postings(result, "uncollectible") == {"AccountsReceivable": (0, 1_320_000),
                                                 "CreditLossExpense": (2 * MONTH, 0),
                                                 "TaxLiability": (12 * TAX, 0),
                                                 "DeferredRevenue": (10 * MONTH, 0)}
    assert postings(result, "recovery", "py_a") == {"Cash": (660_000, 0),
                                                    "TaxLiability": (0, 6 * TAX),
                                                    "CreditLossExpense": (0, 2 * MONTH),
                                                    "DeferredRevenue": (0, 400_000)}
    assert postings(result, "recovery", "py_b") == {"Cash": (660_000, 0),
                                                    "TaxLiability": (0, 6 * TAX),
                                                    "DeferredRevenue": (0, 600_000)}
    assert movements(result, "Revenue") == {
        "2026-01": MONTH, "2026-02": MONTH, "2026-05": 80_000 + 40_000,
        "2026-06": 180_000 + MONTH, **{f"2026-{m:02d}": MONTH for m in range(7, 13)}}
    end = closing(result, "2026-12")
    assert end["Revenue"] == 12 * MONTH and end["Cash"] == 1_320_000
    for account in ("CreditLossExpense", "Recoverables", "DeferredRevenue",
                    "AccountsReceivable"):
        assert account not in end, account


def test_a_write_off_of_a_monthly_invoice_never_reaches_the_other_months():
    # Day amortization (12,000.00 / 365 a day): April holds 30 days = 986.30, while its invoice
    # bills 1,000.00. Written off on 2026-04-15 (14 days served): the recognized share is
    # 1,000.00 x 460.27 / 986.30 = 466.67 and the deferred share 533.33, but April's remaining
    # schedule holds only 986.30 x 16/30 = 526.02 (whole cents): that comes off April, and the
    # 7.31 April cannot hold is credit loss too (466.67 + 7.31 = 473.98), never taken off May..
    # December, which the customer is billed and pays for separately.
    invoices, lines = monthly_invoices(range(1, 13))
    events = [{"invoice_id": "in_4", "occurred_at": T("2026-04-15"), "event": "uncollectible"}]
    policy = Policy(amortization="day")
    clean = run_engine(tables(invoices=invoices, invoice_lines=lines), policy, DEC)
    result = run_engine(tables(invoices=invoices, invoice_lines=lines, invoice_events=events),
                        policy, DEC)
    before, after = revenue_by_period(clean), revenue_by_period(result)
    assert before["2026-04"] == 98_630 and after["2026-04"] == 98_630 - 52_602
    assert {p: a for p, a in after.items() if p != "2026-04"} == {
        p: a for p, a in before.items() if p != "2026-04"}
    assert postings(result, "uncollectible") == {"AccountsReceivable": (0, 110_000),
                                                 "TaxLiability": (TAX, 0),
                                                 "CreditLossExpense": (47_398, 0),
                                                 "DeferredRevenue": (52_602, 0)}


def test_a_write_off_after_a_credit_note_clears_the_whole_remaining_schedule():
    # The annual invoice (12,000.00 + 1,200.00 tax) takes a 2,000.00 + 200.00 service credit on
    # 02-01: January's 1,000.00 was served, so 2,000 x 1,000/12,000 = 166.67 is contra revenue
    # and 1,833.33 comes off February..December. Nothing is paid; the open 10,000.00 + 1,000.00
    # is written off on 03-01. Writing off everything the line still bills clears everything
    # left on its schedule (March..December), however the credit reshaped it: no revenue after
    # February, no deferred revenue left, and as the customer paid nothing the P&L nets to zero
    # (revenue - contra - credit loss = 0); tax relief 1,000.00.
    inv, items = annual_invoice()
    notes = [_credit("cn_1", "2026-02-01", "in_year", "il_year", 2 * MONTH, 2 * TAX,
                     "product_unsatisfactory")]
    events = [{"invoice_id": "in_year", "occurred_at": T("2026-03-01"), "event": "uncollectible"}]
    result = run_engine(tables(invoices=inv, invoice_lines=items, credit_notes=notes,
                               invoice_events=events), POLICY, DEC)
    revenue = movements(result, "Revenue")
    assert set(revenue) == {"2026-01", "2026-02"} and revenue["2026-01"] == MONTH
    assert movements(result, "CreditNotes") == {"2026-02": 16_667}
    end = closing(result, "2026-12")
    assert "DeferredRevenue" not in end and "AccountsReceivable" not in end
    assert end["Revenue"] - end["CreditNotes"] - end["CreditLossExpense"] == 0
    written = postings(result, "uncollectible")
    assert written["AccountsReceivable"] == (0, 1_100_000)
    assert written["TaxLiability"] == (10 * TAX, 0)
    assert written["DeferredRevenue"][0] + written["CreditLossExpense"][0] == 10 * MONTH
    # what March..December held after the credit is what the write-off cleared
    # (12,000.00 less the 1,833.33 the credit cut, less January and February as recognized)
    assert written["DeferredRevenue"][0] == 12 * MONTH - (2 * MONTH - 16_667) - MONTH \
        - revenue["2026-02"] == 833_333


def test_cash_after_a_write_off_beyond_what_was_written_off_is_owed_to_the_customer():
    # April's invoice (1,100.00) written off on 05-20 after April was served; the customer then
    # pays 1,300.00 on 06-10. 1,100.00 recovers the write-off (tax 100.00 back, credit loss
    # 1,000.00 reversed); the other 200.00 is an overpayment: a credit on the receivable, the
    # customer's credit balance (CustomerCredit) at the month end -- never income (Recoverables).
    # (January..March billed and paid, nothing billed after April, so nothing else is owed.)
    invoices, lines = monthly_invoices(range(1, 5))
    events = [{"invoice_id": "in_4", "occurred_at": T("2026-05-20"), "event": "uncollectible"}]
    paid = [{"payment_id": f"py_{m}", "paid_at": T(f"2026-0{m}-05"), "amount": 110_000,
             "currency": "USD", "invoice_id": f"in_{m}"} for m in (1, 2, 3)]
    paid.append({"payment_id": "py_4", "paid_at": T("2026-06-10"), "amount": 130_000,
                 "currency": "USD", "invoice_id": "in_4"})
    result = run_engine(tables(invoices=invoices, invoice_lines=lines, invoice_events=events,
                               payments=paid), POLICY, DEC)
    assert postings(result, "recovery") == {"Cash": (130_000, 0), "TaxLiability": (0, TAX),
                                            "CreditLossExpense": (0, MONTH),
                                            "AccountsReceivable": (0, 20_000)}
    june = closing(result, "2026-06")
    assert june["CustomerCredit"] == 20_000 and "Recoverables" not in june
    assert "CreditLossExpense" not in june


def test_credit_note_after_write_off_any_forgives_part_of_the_write_off_and_creates_no_credit():
    # The annual invoice (12,000.00 + 1,200.00 tax) is written off on 03-01: January and
    # February served, credit loss 2,000.00, 10,000.00 off March..December. On 04-01 a credit
    # note of 1,200.00 + 120.00 tax is issued on it (IFRS 9.5.4.4 / ASC 326-20-35-8: a
    # receivable already written off cannot be credited again): no receivable, no tax, no
    # schedule moves; its share of the credit loss, 1,200 x 2,000 / 12,000 = 200.00, becomes
    # contra revenue (Dr CreditNotes / Cr CreditLossExpense). The customer then pays what it
    # still owes, 13,200 - 1,320 = 11,880.00, on 05-01: tax 1,080.00 back, pre-tax 10,800.00 =
    # 1,800.00 credit loss reversed + 9,000.00 back to the schedule (90% of each cut month:
    # March and April caught up on 05-01, 1,800.00, May 900.00; June..December 900.00 each).
    inv, items = annual_invoice()
    events = [{"invoice_id": "in_year", "occurred_at": T("2026-03-01"), "event": "uncollectible"}]
    notes = [_credit("cn_1", "2026-04-01", "in_year", "il_year", 120_000, 12_000, None)]
    paid = [{"payment_id": "py_1", "paid_at": T("2026-05-01"), "amount": 1_188_000,
             "currency": "USD", "invoice_id": "in_year"}]
    result = run_engine(tables(invoices=inv, invoice_lines=items, invoice_events=events,
                               credit_notes=notes, payments=paid), POLICY, DEC)
    assert postings(result, "credit_note") == {"CreditNotes": (20_000, 0),
                                               "CreditLossExpense": (0, 20_000)}
    assert postings(result, "recovery") == {"Cash": (1_188_000, 0),
                                            "TaxLiability": (0, 108_000),
                                            "CreditLossExpense": (0, 180_000),
                                            "DeferredRevenue": (0, 900_000)}
    assert movements(result, "Revenue") == {
        "2026-01": MONTH, "2026-02": MONTH, "2026-05": 180_000 + 90_000,
        **{f"2026-{m:02d}": 90_000 for m in range(6, 13)}}
    end = closing(result, "2026-12")
    assert end["Revenue"] - end["CreditNotes"] == 1_080_000 == end["Cash"] - 108_000
    for account in ("CreditLossExpense", "CustomerCredit", "AccountsReceivable",
                    "DeferredRevenue", "Recoverables"):
        assert account not in end, account

    # the same credit for the whole invoice: everything written off is forgiven, the credit
    # loss becomes contra revenue in full, and no credit balance appears
    whole = [_credit("cn_1", "2026-04-01", "in_year", "il_year", 12 * MONTH, 12 * TAX, None)]
    result = run_engine(tables(invoices=inv, invoice_lines=items, invoice_events=events,
                               credit_notes=whole), POLICY, DEC)
    end = closing(result, "2026-12")
    assert end["Revenue"] == end["CreditNotes"] == 2 * MONTH
    assert "CustomerCredit" not in end and "CreditLossExpense" not in end
