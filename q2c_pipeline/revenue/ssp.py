"""Standalone selling prices of contract lines (ASC 606-10-32-31..35, IFRS 15.76-80).

The ERP catalog is the authority (``products.ssp_amount``: one unit for ``ssp_term_months``, or
one unit when the term is empty, in ``ssp_currency``). A line's SSP is, in this order:

1. ``line``: the line's own ``ssp_amount``, when the source states one (for its quantity and term);
2. ``catalog``: the catalog SSP x |quantity| x the line's term / ``ssp_term_months`` (a per-unit
   SSP is not scaled by time), converted to the contract's currency at the rate of the contract's
   first signing date, rounded half-up once, at the end;
3. ``stated``: the line's stated price, when neither exists (then allocation changes nothing).

A line's term in months is its whole calendar months from ``service_start`` plus the days left as
a fraction of the month they fall in (2026-03-16 .. 2027-01-01 = 9 + 16/31 months), exactly.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pandas as pd

from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.money import minor_exponent


def term_in_months(start: pd.Timestamp, end: pd.Timestamp) -> Fraction:
    """Whole calendar months of [start, end) plus the rest as a fraction of its month."""
    s, e = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if e <= s:
        return Fraction(0)
    months = (e.year - s.year) * 12 + e.month - s.month
    anchor = s + pd.DateOffset(months=months)
    if anchor > e:
        months -= 1
        anchor = s + pd.DateOffset(months=months)
    rest = (e - anchor).days
    if rest == 0:
        return Fraction(months)
    following = anchor + pd.DateOffset(months=1)
    return Fraction(months) + Fraction(rest, (following - anchor).days)


def _round_half_up(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    return sign * int((magnitude * 2 + 1) // 2)


def catalog_ssp(unit_ssp: int, ssp_currency: str, term_months, quantity: float,
                start, end, currency: str, rates: RateBook, on: date) -> int:
    """The catalog SSP of a line in its currency's minor units (rule 2 of the module)."""
    value = Fraction(int(unit_ssp)) * abs(Fraction(Decimal(str(quantity))))
    if term_months is not None and not pd.isna(term_months) and pd.notna(start) \
            and pd.notna(end):
        value = value * term_in_months(start, end) / int(term_months)
    if ssp_currency != currency:
        num, den = rates.ratio(ssp_currency, currency, pd.Timestamp(on))
        value = value * Fraction(num, den) * Fraction(10) ** (
            minor_exponent(currency) - minor_exponent(ssp_currency))
    return _round_half_up(value)


def standalone_selling_prices(lines: pd.DataFrame, products: pd.DataFrame,
                              rates: RateBook) -> pd.DataFrame:
    """``ssp`` and ``ssp_source`` for each line (``line``, ``catalog`` or ``stated``).

    ``lines`` carries product_code, quantity, amount, ssp_amount, service_start, service_end,
    currency and first_signed_date (the date whose rate converts a catalog SSP).
    """
    catalog = products.drop_duplicates("product_code").set_index("product_code") if len(
        products) else pd.DataFrame(columns=["ssp_amount", "ssp_currency", "ssp_term_months"])
    ssp, source = [], []
    for row in lines[["product_code", "quantity", "amount", "ssp_amount", "service_start",
                      "service_end", "currency", "first_signed_date"]].itertuples(index=False):
        if pd.notna(row.ssp_amount):
            ssp.append(int(row.ssp_amount))
            source.append("line")
            continue
        entry = catalog.loc[row.product_code] if row.product_code in catalog.index else None
        if entry is not None and pd.notna(entry["ssp_amount"]) and pd.notna(row.quantity):
            ssp.append(catalog_ssp(
                entry["ssp_amount"], entry["ssp_currency"] or row.currency,
                entry.get("ssp_term_months"), row.quantity, row.service_start, row.service_end,
                row.currency, rates, row.first_signed_date))
            source.append("catalog")
            continue
        ssp.append(abs(int(row.amount)))
        source.append("stated")
    return pd.DataFrame({"ssp": pd.Series(ssp, index=lines.index, dtype="int64"),
                         "ssp_source": pd.Series(source, index=lines.index, dtype=object)})
