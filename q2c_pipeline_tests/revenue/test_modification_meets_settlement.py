"""Where a contract modification meets the billing activity that settles it: the same day, the
credit note first, the amendment booked late. The contract's amendment states the price
(ASC 606-10-25-13); the credit note for the order change and its refund only settle what it left
(32-10). Revenue is reduced once, whichever arrives first.

The case (contract_builders): 12,000.00 for 2026 billed up front with 1,200.00 tax on
2026-01-01 and paid on 01-05, 1,000.00 a month (month_even). Cancelled from 2026-07-01: a CPQ
delta of -6,000.00 for July..December; Stripe credits the unused 6,000.00 + 600.00 tax
(reason order_change) and refunds the 6,600.00 to the card (the refund named by the note).
"""

from datetime import date

from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T
from q2c_pipeline_tests.revenue.contract_builders import (
    MONTH,
    POLICY,
    TAX,
    annual_invoice,
    closing,
    contract_line,
    movements,
    postings,
    revenue_by_period,
    tables,
    versions,
)

DEC = date(2026, 12, 31)
SIX_MONTHS = {f"2026-{m:02d}": MONTH for m in range(1, 7)}


def _cancelled(signed: str, note_at: str, refund_at: str | None = None,
               reason: str | None = "order_change"):
    inv, items = annual_invoice()
    lines = [contract_line(),
             contract_line("L1c", -6 * MONTH, start="2026-07-01", revises="L1",
                           effective="2026-07-01", quantity=-1.0)]
    paid = [{"payment_id": "py_1", "paid_at": T("2026-01-05"), "amount": 1_320_000,
             "currency": "USD", "invoice_id": "in_year"}]
    notes = [{"credit_note_id": "cn_1", "issued_at": T(note_at), "amount": 6 * MONTH,
              "currency": "USD", "invoice_id": "in_year", "invoice_line_id": "il_year",
              "tax_amount": 6 * TAX, "reason": reason}]
    refunds = [] if refund_at is None else [
        {"refund_id": "re_1", "invoice_id": "in_year", "refunded_at": T(refund_at),
         "amount": 660_000, "currency": "USD", "credit_note_id": "cn_1"}]
    extra = {"refunds": refunds} if refunds else {}
    return tables(lines, versions((signed, "2026-07-01")), inv, items, payments=paid,
                  credit_notes=notes, **extra)


def _settled_once(result, settled="RefundLiability"):
    # revenue Jan..Jun only; the credit note debits what the unused 6,000.00 sat in when it
    # came (the refund liability the cancellation left, else the deferred revenue billed ahead):
    # Dr <that> 6,000.00, Dr Tax 600.00, Cr AR 6,600.00; the refund: Dr AR 6,600.00 / Cr Cash
    # 6,600.00; no contra revenue anywhere
    assert revenue_by_period(result) == SIX_MONTHS
    assert postings(result, "credit_note") == {"AccountsReceivable": (0, 660_000),
                                               settled: (6 * MONTH, 0),
                                               "TaxLiability": (6 * TAX, 0)}
    assert postings(result, "refund") == {"AccountsReceivable": (660_000, 0),
                                          "Cash": (0, 660_000)}
    assert movements(result, "CreditNotes") == {} and movements(result, "Refunds") == {}
    end = closing(result, "2026-12")
    assert end["Revenue"] == 6 * MONTH
    assert end["Cash"] == 1_320_000 - 660_000
    assert end["TaxLiability"] == 6 * TAX
    for account in ("DeferredRevenue", "RefundLiability", "ContractAsset",
                    "UnbilledAccountsReceivable", "AccountsReceivable", "CustomerCredit"):
        assert account not in end, account


def test_a_credit_note_and_refund_on_the_day_a_cancellation_takes_effect_settle_it():
    # Stripe credits and refunds at 10:00 on 2026-07-01, the day the cancellation (signed
    # 06-25) takes effect: the modification comes first in that day, so its refund liability
    # is there for the credit note to settle
    result = run_engine(_cancelled("2026-06-25", "2026-07-01 10:00", "2026-07-01 10:02"),
                        POLICY, DEC)
    _settled_once(result)


def test_a_credit_note_before_the_amendment_is_booked_is_a_contract_asset_until_it_is():
    # Billing cancels in Stripe on 2026-07-01 and credits the unused part; sales books the CPQ
    # amendment only on 07-08, backdated to 07-01. As of 07-05 the amendment is unknown: the
    # price is still 12,000.00, so the credit reduces only what is billed: billed 12,000.00 -
    # 6,000.00 = 6,000.00 against 7,000.00 recognized through July's entry -> a contract asset
    # of 1,000.00 (recognized ahead of billing, conditional on the amendment explaining it).
    tables_ = _cancelled("2026-07-08", "2026-07-01 10:00")
    early = run_engine(tables_, POLICY, date(2026, 7, 5))
    # (the schedule as of 07-05 still runs to December: the price has not changed yet)
    assert revenue_by_period(early) == {f"2026-{m:02d}": MONTH for m in range(1, 13)}
    assert movements(early, "Revenue") == {**SIX_MONTHS, "2026-07": MONTH}
    # (a contract asset, not an unbilled receivable: the credit gave up the right to bill it,
    # no invoice will come for it; ASC 606-10-45-3 / 45-4)
    july = closing(early, "2026-07")
    assert july["ContractAsset"] == MONTH and "UnbilledAccountsReceivable" not in july
    assert "DeferredRevenue" not in july and "RefundLiability" not in july
    assert movements(early, "CreditNotes") == {}
    # the contract's position (revenue layer) is the ledger's, mid-month close included
    positions = early.contract_positions.set_index("period").loc["2026-07"]
    assert positions["contract_asset"] == MONTH and positions["unbilled_receivable"] == 0
    assert positions["deferred_revenue"] == 0 and positions["refund_liability"] == 0
    # Once the amendment is known (as of December), nothing is recognized after 07-01 and
    # everything clears, the refund included: reduced once. The credit note, booked before any
    # refund liability existed, took the 6,000.00 out of deferred revenue.
    refunded = _cancelled("2026-07-08", "2026-07-01 10:00", "2026-07-01 10:02")
    result = run_engine(refunded, POLICY, DEC)
    _settled_once(result, settled="DeferredRevenue")


def test_a_credit_note_with_no_reason_or_a_service_credit_settles_the_cancellation_too():
    # Stripe credit notes often carry no reason (or product_unsatisfactory when support issues
    # them): on a contract whose amendment already cut the price, the credit still settles the
    # refund liability first (treatment rows credit_note/*/contract and
    # credit_note/product_unsatisfactory/contract: settle_then_price_change) -- nothing is
    # contra revenue, and the refund liability clears.
    for reason in (None, "product_unsatisfactory"):
        result = run_engine(_cancelled("2026-06-25", "2026-07-01 10:00", "2026-07-01 10:02",
                                       reason=reason), POLICY, DEC)
        _settled_once(result)


def test_a_cancellation_after_a_write_off_is_priced_on_the_contract_not_the_written_off_schedule():
    # The annual invoice is written off on 03-01 (credit loss 2,000.00 for January..February,
    # 10,000.00 held back off March..December), then the contract is cancelled from 07-01
    # (signed 06-25, delta -6,000.00 for July..December). Collectibility is not a price change:
    # the cancellation removes July..December from what the write-off holds (6,000.00 released)
    # and books no revenue in July and no refund liability -- nothing was received.
    inv, items = annual_invoice()
    lines = [contract_line(),
             contract_line("L1c", -6 * MONTH, start="2026-07-01", revises="L1",
                           effective="2026-07-01", quantity=-1.0)]
    events = [{"invoice_id": "in_year", "occurred_at": T("2026-03-01"), "event": "uncollectible"}]

    def run(paid_amount):
        paid = [{"payment_id": "py_1", "paid_at": T("2026-09-01"), "amount": paid_amount,
                 "currency": "USD", "invoice_id": "in_year"}]
        return run_engine(tables(lines, versions(("2026-06-25", "2026-07-01")), inv, items,
                                 invoice_events=events, payments=paid), POLICY, DEC)

    # the customer pays what the contract still asks, 6,000.00 + 600.00 tax, on 09-01: credit
    # loss 2,000.00 reversed, 4,000.00 (March..June) caught up on 09-01; revenue 6,000.00
    result = run(660_000)
    assert movements(result, "Revenue") == {"2026-01": MONTH, "2026-02": MONTH,
                                            "2026-09": 4 * MONTH}
    end = closing(result, "2026-12")
    for account in ("RefundLiability", "DeferredRevenue", "CreditLossExpense", "Recoverables"):
        assert account not in end, account
    # it pays the whole invoice instead, 13,200.00: the 6,000.00 for the cancelled months is
    # owed back (refund liability), not income
    result = run(1_320_000)
    assert movements(result, "Revenue") == {"2026-01": MONTH, "2026-02": MONTH,
                                            "2026-09": 4 * MONTH}
    assert postings(result, "recovery") == {"Cash": (1_320_000, 0),
                                            "TaxLiability": (0, 12 * TAX),
                                            "CreditLossExpense": (0, 2 * MONTH),
                                            "DeferredRevenue": (0, 4 * MONTH),
                                            "RefundLiability": (0, 6 * MONTH)}
    assert closing(result, "2026-12")["RefundLiability"] == 6 * MONTH
