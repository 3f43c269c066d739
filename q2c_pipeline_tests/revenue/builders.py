"""Tiny canonical frames for engine tests (only the columns a test cares about)."""

from __future__ import annotations

import pandas as pd

T = pd.Timestamp


def company(entity="US01", functional="USD", customer="K1"):
    return {
        "legal_entities": pd.DataFrame([{"legal_entity": entity,
                                         "functional_currency": functional}]),
        "customers": pd.DataFrame([{"customer_id": customer, "name": "Acme",
                                    "legal_entity": entity, "currency": functional,
                                    "correlation_id": customer}]),
    }


def invoice(invoice_id, finalized, currency="USD", customer="K1", contract=None):
    return {"invoice_id": invoice_id, "customer_id": customer, "currency": currency,
            "finalized_at": T(finalized), "contract_id": contract, "legal_entity": None,
            "status": "open", "correlation_id": contract or invoice_id}


def invoice_line(line_id, invoice_id, amount, start=None, end=None, tax=0, inclusive=False,
                 contract_line=None, created=None):
    return {"invoice_line_id": line_id, "invoice_id": invoice_id, "amount": amount,
            "contract_line_id": contract_line, "product_code": None, "quantity": 1.0,
            "tax_amount": tax, "tax_inclusive": inclusive,
            "service_start": T(start) if start else pd.NaT,
            "service_end": T(end) if end else pd.NaT, "is_proration": False,
            "created_at": T(created) if created else pd.NaT}


def frames(**rows):
    return {name: pd.DataFrame(value) for name, value in rows.items()}


PRODUCT_COLUMNS = ["product_code", "revenue_pattern", "name", "family", "ssp_amount",
                   "ssp_currency", "ssp_term_months"]


def catalog(*codes, pattern="ratable"):
    """A products frame: one catalog row per code, without an SSP (so allocation falls back to
    the lines' stated prices exactly as before). ``pattern`` is one revenue pattern for every
    code or a {code: pattern} mapping."""
    def pattern_of(code):
        return pattern.get(code, "ratable") if isinstance(pattern, dict) else pattern

    rows = [{"product_code": code, "revenue_pattern": pattern_of(code), "name": code,
             "family": None, "ssp_amount": None, "ssp_currency": None,
             "ssp_term_months": None} for code in dict.fromkeys(codes)]
    return pd.DataFrame(rows, columns=PRODUCT_COLUMNS)


def _codes(frame):
    if frame is None or "product_code" not in frame:
        return []
    values = frame["product_code"]
    return [str(c) for c in values[values.notna() & values.astype(str).ne("")]]


def with_catalog(tables):
    """The tables with a ``products`` frame listing every product code their contract lines,
    invoice lines and usage use (codes a given ``products`` frame already has are kept as they
    are). A new row has no SSP, so allocation is what it was without a catalog; its revenue
    pattern is that of the code's contract lines (the engine's default when a line states
    none: ratable with a service period, point in time without), ``usage`` for usage and for
    invoice lines that bill usage, else ``ratable``."""
    out = dict(tables)
    patterns: dict[str, str] = {}
    lines = out.get("contract_lines")
    if lines is not None and len(lines) and "product_code" in lines:
        for _, row in lines.iterrows():
            code = row["product_code"]
            if code is None or pd.isna(code) or str(code) == "" or str(code) in patterns:
                continue
            stated = row.get("revenue_pattern")
            if stated is None or pd.isna(stated):
                has_period = pd.notna(row.get("service_start")) and pd.notna(
                    row.get("service_end"))
                stated = "ratable" if has_period else "point_in_time"
            patterns[str(code)] = stated
    usage = out.get("usage")
    for code in _codes(usage):
        patterns.setdefault(code, "usage")
    invoice_lines = out.get("invoice_lines")
    if (usage is not None and "invoice_line_id" in usage and invoice_lines is not None
            and "invoice_line_id" in invoice_lines):
        billed = invoice_lines[invoice_lines["invoice_line_id"].isin(
            set(usage["invoice_line_id"].dropna()))]
        for code in _codes(billed):
            patterns.setdefault(code, "usage")
    for code in _codes(out.get("invoice_lines")):
        patterns.setdefault(code, "ratable")
    given = out.get("products")
    known = set(_codes(given))
    missing = [code for code in patterns if code not in known]
    if not missing:
        return out
    new = catalog(*missing, pattern=patterns)
    if given is None or len(given) == 0:
        out["products"] = new
    else:
        out["products"] = pd.concat([given, new], ignore_index=True)
    return out
