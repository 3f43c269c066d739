"""The sample company's files in a folder, read and edited the way production exports break.

``Company`` loads a file on first use, hands out its records as plain dicts to edit in place and
writes every file it loaded back on ``save``, in the shape it had (a JSON list, an ERP CSV with its
header, a usage Parquet day). Lookups go by the customer's name, as a person reading the sample
would: ``co.invoices("Initech Ltd")``."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pandas as pd


class Company:
    def __init__(self, root: str | Path, *, base: Company | None = None) -> None:
        self.root = Path(root)
        self._base = base  # files already loaded: copied from it instead of read again
        self._json: dict[str, list[dict]] = {}
        self._csv: dict[str, tuple[list[str], list[dict]]] = {}
        self._parquet: dict[str, pd.DataFrame] = {}
        self.raw: dict[str, bytes] = {}  # files replaced byte for byte (after records are saved)

    # --- files -----------------------------------------------------------------------------
    def records(self, rel: str) -> list[dict]:
        if rel not in self._json:
            self._json[rel] = (copy.deepcopy(self._base.records(rel)) if self._base
                               else json.loads((self.root / rel).read_text(encoding="utf-8")))
        return self._json[rel]

    def rows(self, rel: str) -> list[dict]:
        if rel not in self._csv and self._base:
            self._csv[rel] = copy.deepcopy((self._base.columns(rel), self._base.rows(rel)))
        if rel not in self._csv:
            with (self.root / rel).open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                self._csv[rel] = (list(reader.fieldnames or []), list(reader))
        return self._csv[rel][1]

    def columns(self, rel: str) -> list[str]:
        self.rows(rel)
        return self._csv[rel][0]

    def usage_day(self, day: str) -> pd.DataFrame:
        rel = f"usage/usage_events_{day}.parquet"
        if rel not in self._parquet:
            self._parquet[rel] = (self._base.usage_day(day).copy() if self._base
                                  else pd.read_parquet(self.root / rel))
        return self._parquet[rel]

    def set_usage_day(self, day: str, frame: pd.DataFrame) -> None:
        self._parquet[f"usage/usage_events_{day}.parquet"] = frame

    def save(self) -> None:
        for rel, records in self._json.items():
            (self.root / rel).write_text(json.dumps(records, indent=1), encoding="utf-8")
        for rel, (columns, rows) in self._csv.items():
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n",
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            (self.root / rel).write_text(out.getvalue(), encoding="utf-8")
        for rel, frame in self._parquet.items():
            frame.to_parquet(self.root / rel, index=False)
        for rel, data in self.raw.items():
            (self.root / rel).write_bytes(data)

    # --- lookups by customer name ------------------------------------------------------------
    def stripe_customer(self, name: str) -> dict:
        return next(c for c in self.records("stripe/customers.json") if c["name"] == name)

    def account_id(self, name: str) -> str:
        return self.stripe_customer(name)["metadata"]["sf_account_id"]

    def customer_id(self, name: str) -> str:
        """The canonical customer id (``sf:<Account Id>``)."""
        return "sf:" + self.account_id(name)

    def account(self, name: str) -> dict:
        return next(a for a in self.records("salesforce/Account.json")
                    if a["Id"] == self.account_id(name))

    def contracts(self, name: str) -> list[dict]:
        return [c for c in self.records("salesforce/Contract.json")
                if c["AccountId"] == self.account_id(name)]

    def subscriptions(self, name: str) -> list[dict]:
        return [s for s in self.records("salesforce/SBQQ__Subscription__c.json")
                if s["SBQQ__Account__c"] == self.account_id(name)]

    def invoices(self, name: str, *, status: str | None = None) -> list[dict]:
        cus = self.stripe_customer(name)["id"]
        return [i for i in self.records("stripe/invoices.json") if i["customer"] == cus
                and (status is None or i["status"] == status)]

    def payments(self, name: str) -> list[dict]:
        ids = {i["id"] for i in self.invoices(name)}
        return [p for p in self.records("stripe/invoice_payments.json") if p["invoice"] in ids]

    def refunds(self, name: str) -> list[dict]:
        intents = {p["payment"]["payment_intent"] for p in self.payments(name)}
        return [r for r in self.records("stripe/refunds.json")
                if r["payment_intent"] in intents]

    def credit_notes(self, name: str) -> list[dict]:
        cus = self.stripe_customer(name)["id"]
        return [c for c in self.records("stripe/credit_notes.json") if c["customer"] == cus]

    def erp_customer(self, name: str) -> dict | None:
        erp_id = self.stripe_customer(name)["metadata"].get("erp_customer_id")
        return next((r for r in self.rows("erp/customers.csv")
                     if r["erp_customer_id"] == erp_id), None)

    def usage_events(self, name: str) -> tuple[str, pd.DataFrame] | None:
        """The first usage day with an event of the customer, and that day's frame."""
        cus = self.stripe_customer(name)["id"]
        for path in sorted((self.root / "usage").glob("usage_events_*.parquet")):
            day = path.stem.removeprefix("usage_events_")
            frame = self.usage_day(day)
            if (frame["stripe_customer_id"] == cus).any():
                return day, frame
        return None
