from datetime import date

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T, catalog, company, frames


def _allocate(lines, price, rounding="minor_unit"):
    tables = {**company(), "products": catalog("P", pattern="point_in_time"), **frames(
        contracts=[{"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
                    "currency": "USD", "signed_date": T("2026-01-01"),
                    "transaction_price": price, "version": 1, "correlation_id": "C1"}],
        contract_lines=[{
            "contract_line_id": lid, "contract_id": "C1", "product_code": "P", "quantity": 1.0,
            "amount": amount, "ssp_amount": ssp, "service_start": T("2026-01-01"),
            "service_end": pd.NaT, "revenue_pattern": "point_in_time", "revises_line_id": None,
            "effective_date": pd.NaT, "allocation_group": group}
            for lid, amount, ssp, group in lines])}
    tables["contracts"]["transaction_price"] = tables["contracts"]["transaction_price"].astype(
        "Int64")
    tables["contract_lines"]["ssp_amount"] = tables["contract_lines"]["ssp_amount"].astype(
        "Int64")
    out = run_engine(tables, Policy(allocation_rounding=rounding), date(2026, 1, 31)).allocation
    return dict(zip(out["contract_line_id"], out["allocated_amount"], strict=True))


def test_bundle_allocation_by_relative_ssp_gives_rounding_unit_to_largest_remainder():
    # price 100,000.00 over SSP 50,000 / 25,000 / 75,000 (total 150,000):
    # A 3,333,333.33 -> 3,333,333; B 1,666,666.67 -> 1,666,667 (largest remainder); C 5,000,000
    got = _allocate([("A", 0, 5_000_000, None), ("B", 0, 2_500_000, None),
                     ("C", 0, 7_500_000, None)], 10_000_000)
    assert got == {"A": 3_333_333, "B": 1_666_667, "C": 5_000_000}


def test_discount_belonging_to_an_allocation_group_stays_inside_the_group():
    # ASC 606-10-55-259..263 (Example 34, Case A): SSP A 40, B 55, C 45; price 100; the 40
    # discount belongs to B and C: A keeps 40, B = 60 x 55/100 = 33, C = 60 x 45/100 = 27.
    got = _allocate([("A", 4_000, 4_000, None), ("B", 5_500, 5_500, "BC"),
                     ("C", 4_500, 4_500, "BC")], 10_000)
    assert got == {"A": 4_000, "B": 3_300, "C": 2_700}


def test_whole_unit_allocation_rounds_to_whole_major_units_and_still_sums_to_price():
    # 100.00 over three equal SSPs: 33 whole units each = 99.00; the missing unit goes to the
    # first line by id (equal remainders): 34.00, 33.00, 33.00
    got = _allocate([("A", 1, 100, None), ("B", 1, 100, None), ("C", 1, 100, None)], 10_000,
                    "whole_unit")
    assert got == {"A": 3_400, "B": 3_300, "C": 3_300}


def test_transaction_price_defaults_to_the_sum_of_line_amounts():
    got = _allocate([("A", 700, None, None), ("B", 300, None, None)], pd.NA)
    assert got == {"A": 700, "B": 300}
