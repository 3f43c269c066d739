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

