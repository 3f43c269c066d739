"""ERP CSV exports (text columns) -> canonical reference frames."""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pytest

from q2c_pipeline.schemas import (
    AccountingPeriods,
    ChartOfAccounts,
    FxRates,
    LegalEntities,
    Products,
    TaxCodes,
)
from q2c_pipeline.sources.erp import (
    map_accounting_periods,
    map_chart_of_accounts,
    map_fx_rates,
    map_legal_entities,
    map_products,
    map_tax_codes,
)
from q2c_pipeline.sources.wire import PAYLOAD_COLUMN


def _text(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, dtype=str)


def _validate(model, frame: pd.DataFrame) -> pd.DataFrame:
    return model.validate(frame.drop(columns=[PAYLOAD_COLUMN]))


def test_catalog_ssp_decimal_strings_become_minor_units():
    catalog = _text([
        {"product_code": "PLAT-SEAT", "name": "Seat", "family": "Subscription",
         "revenue_pattern": "Ratable", "ssp_amount": "1200.00", "ssp_currency": "usd"},
        {"product_code": "API-CALLS", "name": "Calls", "family": "Usage",
         "revenue_pattern": "usage", "ssp_amount": "0.02", "ssp_currency": "USD"},
        {"product_code": "JP-SEAT", "name": "Seat JP", "family": "Subscription",
         "revenue_pattern": "ratable", "ssp_amount": "1500", "ssp_currency": "JPY"},
        {"product_code": "PS-DAY", "name": "PS", "family": "Services",
         "revenue_pattern": "point_in_time", "ssp_amount": "", "ssp_currency": ""},
    ])
    products = map_products(catalog)

    assert list(products["ssp_amount"][:3]) == [120000, 2, 1500]  # JPY has no minor unit
    assert pd.isna(products["ssp_amount"][3])
    assert list(products["revenue_pattern"]) == ["ratable", "usage", "ratable", "point_in_time"]
    assert products.iloc[0]["ssp_currency"] == "USD"
    assert products.iloc[0][PAYLOAD_COLUMN] == (
        '{"family":"Subscription","name":"Seat","product_code":"PLAT-SEAT",'
        '"revenue_pattern":"Ratable","ssp_amount":"1200.00","ssp_currency":"usd"}')
    _validate(Products, products)


def test_unknown_revenue_pattern_comes_through_and_fails_validation():
    catalog = _text([{"product_code": "X", "revenue_pattern": "whenever", "ssp_amount": "1"}])

    with pytest.raises(pandera.errors.SchemaError, match="revenue_pattern"):
        _validate(Products, map_products(catalog))


def test_tax_codes_read_basis_points_and_inclusive_flags():
    codes = map_tax_codes(_text([
        {"tax_code": "US-CA", "country": "US", "rate_bps": "725", "is_inclusive": "false"},
        {"tax_code": "GB-VAT20", "country": "GB", "rate_bps": "2000", "is_inclusive": "TRUE"},
    ]))

    assert list(codes["rate_bps"]) == [725, 2000]
    assert list(codes["is_inclusive"]) == [False, True]
    _validate(TaxCodes, codes)


def test_fx_rates_keep_the_exact_decimal_string_and_upper_case_currencies():
    rates = map_fx_rates(_text([{"rate_date": "2026-03-31", "from_currency": "eur",
                                 "to_currency": "GBP", "rate": "0.854321"}]))

    row = rates.iloc[0]
    assert (row["from_currency"], row["to_currency"], row["rate"]) == ("EUR", "GBP", "0.854321")
    assert row["rate_date"] == pd.Timestamp("2026-03-31")
    _validate(FxRates, rates)


def test_accounting_periods_parse_closed_at_and_leave_open_periods_empty():
    periods = map_accounting_periods(_text([
        {"legal_entity": "US01", "period": "2025-12", "status": "Closed",
         "closed_at": "2026-01-05T00:00:00Z"},
        {"legal_entity": "US01", "period": "2026-01", "status": "open", "closed_at": ""},
    ]))

    assert list(periods["status"]) == ["closed", "open"]
    assert periods.iloc[0]["closed_at"] == pd.Timestamp("2026-01-05")
    assert pd.isna(periods.iloc[1]["closed_at"])
    _validate(AccountingPeriods, periods)


def test_legal_entities_and_chart_of_accounts_validate():
    entities = map_legal_entities(_text([
        {"legal_entity": "US01", "functional_currency": "usd", "country": "US"},
        {"legal_entity": "UK01", "functional_currency": "GBP", "country": "GB"},
    ]))
    chart = map_chart_of_accounts(_text([
        {"legal_entity": "US01", "account": "Revenue", "gl_account": "4000",
         "gl_name": "Revenue", "department": ""},
    ]))

    assert list(entities["functional_currency"]) == ["USD", "GBP"]
    assert entities.iloc[0]["calendar"] is None  # absent column -> null
    assert chart.iloc[0]["department"] is None
    _validate(LegalEntities, entities)
    _validate(ChartOfAccounts, chart)


def test_empty_export_gives_an_empty_frame_with_the_canonical_columns():
    products = map_products(pd.DataFrame())

    assert products.empty
    assert list(products.columns) == [
        "product_code", "revenue_pattern", "name", "family", "ssp_amount", "ssp_currency",
        "ssp_term_months", PAYLOAD_COLUMN]
