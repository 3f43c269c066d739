"""The sample company: a deterministic snapshot of Salesforce, Stripe, usage metering and the ERP.

``generate_company(out_dir, seed, scale)`` writes every source system's state in its own wire shape
(Salesforce REST query records, Stripe API objects, ERP CSV exports) so the whole pipeline can run
offline, and so tests and the README can point at one story. The same seed and scale give
byte-identical files.

The story (``COMPANY_STORY`` below, cited by the README):
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from q2c_pipeline.sources.billing import STRIPE_API_VERSION
from q2c_pipeline.sources.wire import checksum_salesforce_id

COMPANY_STORY = """\
Q2C Software sells a B2B analytics platform from two legal entities: US01 (USD, United States)
and UK01 (GBP, United Kingdom). Deals are closed in Salesforce with CPQ, billed in Stripe and
booked in the ERP. Activity runs 2026-01-01 to the as-of date 2026-06-30; accounting periods
2025-12..2026-12 are set up per entity and 2025-12 was closed on 2026-01-05.

Catalog (ERP is the authority for revenue pattern and SSP):
  PLAT-SEAT     platform seat, 12-month term, billed monthly in advance  ratable
  PLAT-ONBOARD  onboarding fee, one-time                                 point_in_time
  PS-DAY        professional services day, delivered over 3 months      ratable
  API-CALLS     API call overage, metered, billed monthly in arrears     usage
Salesforce prices are net of tax. US customers pay sales tax on top (CA 7.25%, TX 6.25%,
Oregon none); UK customers pay 20% VAT included in the Stripe price (gross = net x 1.2); the EU
customer is reverse-charged. API-call metering went live on 2026-04-01, so usage invoices start
in May (April usage) and June usage is still unbilled at the as-of date. EUR usage is priced
per 1,000 calls, rounded up (EUR 20.00 a package); Stripe's billing meter counts every call.
The extraction ran at 00:30 on 1 July, when Contoso's July renewal invoice was still a draft.

Named customers and what they exercise:
  Northwind Analytics (US01, USD)  signed 2025-12-22; onboarding invoiced 2025-12-30 in the closed
                                   period (late activity); 20 seats from 2026-01-01; API usage.
  Contoso Retail (US01, USD, OR)   10 seats from 2026-01-01, +5 seats on 2026-03-16: a CPQ delta
                                   row, Stripe proration lines on the April invoice (unused time
                                   on 10, remaining time on 15, period 2026-03-16..04-01).
  Fabrikam Media (UK01, GBP)       8 seats from 2026-02-01, cancelled from 2026-05-01 (negative
                                   delta + SBQQ__TerminatedDate__c, Stripe subscription canceled);
                                   its April invoice was never paid and marked uncollectible.
  Globex Corporation (US01, USD)   25 seats at 7.5% off, onboarding and 10 PS days; a pre-payment
                                   credit note on the March invoice (half the seat line) and a
                                   credit note on the April invoice that was voided.
  Initech Ltd (UK01, GBP)          12 seats at 10% off; one seat-month of February refunded.
  Mueller Logistik GmbH (UK01/EUR) EUR customer of the GBP entity (FX), reverse charge, usage.
  Wayne Enterprises (UK01 billing, US01 contract, USD)
                                   intercompany: a UK01 customer (ERP master, Stripe, 20% VAT)
                                   whose deal US01 sold (Contract Q2C_Legal_Entity__c = US01);
                                   6 seats billed monthly in USD from 2026-02-01, each invoice
                                   paid after 7 days. UK01 owes US01 the pre-tax billing, and its
                                   USD receivable is FX against GBP.
  Stark Industries (US01, USD, CA) 10 seats billed once a year in advance (2026-01-01, paid after
                                   5 days), cancelled from 2026-04-01: the unused 9 months and
                                   their tax credited (post-payment credit note, order_change)
                                   and refunded to the card (the refund named by the note).
  Regular customers                random US/UK deals: seats, onboarding, PS, usage; most
                                   invoices paid within 3-45 days, the rest still open.
Deliberately bad records, each isolated to one small customer:
  a) Umbrella Supplies    SBQQ__Subscription__c for LEGACY-SUPPORT, not in the ERP catalog.
  b) Shadow Labs Inc      Account, contract and invoices, but no row in erp/customers.csv.
  c) Britannia Tea Co     GBP contract; its May invoice was issued in USD.
  d) Hooli Holdings       invoice id duplicated: the March invoice appears twice, different content.
  e) Vandelay Industries  SBQQ__Subscription__c with quantity -2 and no RevisedSubscription.
Waiting on a team (the work queues):
  Pied Piper Inc (US01)   8 seats from 2026-06-01, activated in Salesforce on 2026-05-21 and
                          never set up in Stripe: a contract activated but not billed.
"""

__doc__ = (__doc__ or "") + "\n" + COMPANY_STORY

# Who may act for which team in the close (q2c_pipeline/close/decisions.py reads it).
SAMPLE_ROLES = """\
# Who may decide what in the close: each person and the teams they act for
# (sales_ops, billing_ops, controllership). Controllership may act for every team; waivers,
# locks, reopenings and revenue-treatment overrides need it.
people:
  dana.controller@q2c.example: [controllership]
  bo.billing@q2c.example: [billing_ops]
  sam.salesops@q2c.example: [sales_ops]
  q2c-close-schedule: [controllership]   # the monthly close schedule's runs
"""

GENERATOR_VERSION = "1.0.0"
AS_OF = date(2026, 6, 30)
USAGE_START = date(2026, 4, 1)
SALESFORCE_API_VERSION = "59.0"
SALESFORCE_OBJECTS = [
    "Account", "Product2", "Opportunity", "OpportunityLineItem", "Contract",
    "SBQQ__Subscription__c",
]
# The org as getUserInfo states it: multi-currency (each record names its CurrencyIsoCode, so
# no org default currency), Pacific time.
SALESFORCE_USER_INFO = {
    "organizationId": "00DHp000002Q2cSAAS", "organizationName": "Q2C Software",
    "organizationMultiCurrency": True, "orgDefaultCurrencyIsoCode": None,
    "userDefaultCurrencyIsoCode": "USD", "userId": "005Hp00000Q2cOwIAF",
    "userTimeZone": "America/Los_Angeles",
}
STRIPE_RESOURCES = [
    "customers", "products", "prices", "subscriptions", "invoices", "credit_notes",
    "invoice_payments", "refunds", "billing_meters", "billing_meter_event_summaries",
]
ERP_TABLES = [
    "legal_entities", "chart_of_accounts", "accounting_periods", "products", "tax_codes",
    "fx_rates", "customers",
]
USAGE_COLUMNS = [
    "event_id", "event_name", "stripe_customer_id", "sf_subscription_id", "product_code",
    "quantity", "timestamp",
]
REGULAR_CUSTOMERS_PER_SCALE = 6
USAGE_EVENTS_PER_DAY = 8.0  # Poisson mean per usage customer and day

LEGAL_ENTITIES = [
    {"legal_entity": "US01", "name": "Q2C Software Inc.", "functional_currency": "USD",
     "country": "US", "calendar": "calendar_month"},
    {"legal_entity": "UK01", "name": "Q2C Software Ltd", "functional_currency": "GBP",
     "country": "GB", "calendar": "calendar_month"},
]
# logical account -> (US01 GL, UK01 GL, name)
GL_ACCOUNTS = {
    "Cash": ("1000", "110000", "Cash at bank"),
    "AccountsReceivable": ("1200", "120000", "Trade receivables"),
    "UnbilledAccountsReceivable": ("1210", "120500", "Unbilled receivables"),
    "ContractAsset": ("1220", "121000", "Contract assets"),
    "IntercompanyReceivable": ("1300", "130000", "Intercompany receivable"),
    "IntercompanyPayable": ("2100", "210000", "Intercompany payable"),
    "CustomerCredit": ("2150", "215000", "Customer credit balances"),
    "RefundLiability": ("2200", "220000", "Refund liabilities"),
    "TaxLiability": ("2300", "230000", "Sales tax / VAT payable"),
    "DeferredRevenue": ("2400", "240000", "Deferred revenue (contract liabilities)"),
    "Revenue": ("4000", "400000", "Subscription and services revenue"),
    "CreditNotes": ("4910", "491000", "Credit notes (contra revenue)"),
    "Refunds": ("4920", "492000", "Refunds (contra revenue)"),
    "Voids": ("4930", "493000", "Voided invoices (contra revenue)"),
    "BadDebt": ("4940", "494000", "Bad debt (contra revenue)"),
    "CreditLossExpense": ("6500", "650000", "Credit loss expense"),
    "Recoverables": ("6510", "651000", "Bad debt recoveries"),
    "FxGain": ("7900", "790000", "Realised FX gain"),
    "FxLoss": ("7910", "791000", "Realised FX loss"),
}
# tax code -> (country, region, rate in basis points, inclusive, Stripe taxability reason)
TAX_CODES = {
    "US-CA": ("US", "CA", 725, False, "standard_rated"),
    "US-TX": ("US", "TX", 625, False, "standard_rated"),
    "US-OR": ("US", "OR", 0, False, None),
    "GB-VAT20": ("GB", None, 2000, True, "standard_rated"),
    "GB-RC": ("GB", None, 0, False, "reverse_charge"),
}
# product code -> (name, family, pattern, unit, charge type, billing frequency, billing type)
CATALOG = {
    "PLAT-SEAT": ("Platform seat", "Subscription", "ratable", "seat", "Recurring", "Monthly",
                  "Advance"),
    "PLAT-ONBOARD": ("Onboarding fee", "Services", "point_in_time", None, "One-Time", None, None),
    "PS-DAY": ("Professional services day", "Services", "ratable", "day", "One-Time", None, None),
    "API-CALLS": ("API call overage", "Usage", "usage", "call", "Usage", "Monthly", "Arrears"),
}
UNKNOWN_PRODUCT = ("LEGACY-SUPPORT", "Legacy premium support (retired)", "Support")
# ERP catalog SSP (decimal strings, USD): seat per year, onboarding, PS day, API call; the
# seat's SSP is quoted for a 12-month term (ssp_term_months), the others per unit.
CATALOG_SSP = {"PLAT-SEAT": "1200.00", "PLAT-ONBOARD": "5000.00", "PS-DAY": "1600.00",
               "API-CALLS": "0.02"}
CATALOG_SSP_TERM = {"PLAT-SEAT": "12"}
# Net list prices in minor units per currency: seat per month, onboarding, PS day, API call.
SEAT_MONTHLY = {"USD": 10000, "GBP": 8000, "EUR": 9200}
ONBOARDING = {"USD": 500000, "GBP": 400000, "EUR": 460000}
PS_DAY = {"USD": 160000, "GBP": 128000, "EUR": 147000}
API_CALL = {"USD": 2, "EUR": 2}  # no UK usage: VAT-inclusive metering would not rate exactly
# EUR usage is priced per package of 1,000 calls, rounded up (Stripe transform_quantity): EUR
# 20.00 per 1,000 calls, so 1,001 calls bill 40.00.
API_CALL_PACKAGE = {"EUR": (2000, 1000)}
API_METER = "mtr_1Q2cApiCallsMeter0000000"  # Stripe's billing meter for event_name api_call
LEGACY_MONTHLY = 2500
DISCOUNTS_BPS = [0, 750, 1000, 1500]
PS_MONTHS = 3
TERM_MONTHS = 12

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_REGULAR_NAMES = [
    "Acme Robotics", "Blue Harbor Foods", "Cobalt Freight", "Dunmore Health", "Evergreen Labs",
    "Foxglove Studio", "Granite Insurance", "Harbourside Books", "Ironbark Energy",
    "Juniper Legal", "Kestrel Aviation", "Lumen Dental", "Marlow & Finch", "Northgate Rail",
    "Orchard Bank", "Pinewood Media", "Quayside Pharma", "Riverton Water",
]
_US_PLACES = [("San Francisco", "CA", "US-CA"), ("Austin", "TX", "US-TX"),
              ("Los Angeles", "CA", "US-CA"), ("Dallas", "TX", "US-TX")]
_UK_PLACES = ["London", "Manchester", "Leeds", "Bristol"]


@dataclass
class _Deal:
    """One customer and its contract, with the story events that happen to it."""

    name: str
    entity: str
    currency: str
    country: str
    city: str
    state: str | None
    tax_code: str
    seats: int
    start: date
    activated: date
    discount_bps: int = 0
    onboarding: bool = False
    ps_days: int = 0
    usage: bool = False
    upgrade: tuple[date, int] | None = None
    cancel_on: date | None = None
    in_erp: bool = True
    unknown_product: bool = False
    negative_row: bool = False
    wrong_currency_invoice: int | None = None
    duplicate_invoice: int | None = None
    credit_note_invoice: int | None = None
    void_credit_note_invoice: int | None = None
    refund_invoice: int | None = None
    late_onboarding: bool = False
    uncollectible_last: bool = False
    contracting_entity: str | None = None  # Contract Q2C_Legal_Entity__c (intercompany)
    paid_after_days: int | None = None  # fixed payment delay instead of a random one
    annual: bool = False  # seats billed once a year in advance instead of monthly
    refund_unused: bool = False  # on cancellation, credit the unused term and refund it
    not_billed: bool = False  # activated in Salesforce, never set up in Stripe
    # the CPQ discount is billed as a Stripe coupon on the subscription: list-price lines with
    # discount_amounts (instead of a net price)
    coupon: bool = False
    ids: dict[str, str] = field(default_factory=dict)
    sub_rows: dict[str, str] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def end(self) -> date:
        """Contract EndDate (inclusive, Salesforce style)."""
        return _add_months(self.start, TERM_MONTHS) - timedelta(days=1)

    @property
    def inclusive_tax(self) -> bool:
        return TAX_CODES[self.tax_code][3]

    def net_seat_monthly(self) -> int:
        return SEAT_MONTHLY[self.currency] * (10000 - self.discount_bps) // 10000


def generate_company(out_dir: Path, seed: int = 7, scale: int = 1) -> dict[str, int]:
    """Write the sample company's source snapshot under ``out_dir``; return counts per file.

    Deterministic: the same ``seed`` and ``scale`` give byte-identical files. ``scale``
    multiplies the regular customers (and with them contracts, invoices and usage volume).
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    builder = _CompanyBuilder(seed, scale)
    builder.build()
    return builder.write(Path(out_dir))


class _CompanyBuilder:
    def __init__(self, seed: int, scale: int) -> None:
        self.seed = seed
        self.scale = scale
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.sf: dict[str, list[dict[str, Any]]] = {name: [] for name in SALESFORCE_OBJECTS}
        self.stripe: dict[str, list[dict[str, Any]]] = {name: [] for name in STRIPE_RESOURCES}
        self.erp_customers: list[dict[str, str]] = []
        self.usage_rows: list[dict[str, Any]] = []
        self.deals: list[_Deal] = []
        self._sf_counters: dict[str, int] = {}
        self._stripe_seen: set[str] = set()
        self._prices: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._sf_products: dict[str, str] = {}
        self._stripe_products: dict[str, str] = {}
        self._tax_rates: dict[str, str] = {}
        self._contract_number = 100
        self._sub_number = 1000
        self._erp_number = 10000
        self._usage_by_period: dict[tuple[int, date], int] = {}
        self._invoice_sequence: dict[str, int] = {}

    # ---------------------------------------------------------------- ids and formats
    def sf_id(self, prefix: str) -> str:
        count = self._sf_counters.get(prefix, 0) + 1
        self._sf_counters[prefix] = count
        serial = _base62(count, 3)
        noise = "".join(self.rng.choice(_BASE62) for _ in range(4))
        return checksum_salesforce_id(f"{prefix}Hp0{'00'}{serial}{noise}"[:15])

    def stripe_id(self, prefix: str) -> str:
        while True:
            candidate = prefix + "_1" + "".join(self.rng.choice(_BASE62) for _ in range(23))
            if candidate not in self._stripe_seen:
                self._stripe_seen.add(candidate)
                return candidate

    # ---------------------------------------------------------------- build
    def build(self) -> None:
        self._build_catalog()
        self.deals = self._plan_deals()
        for index, deal in enumerate(self.deals):
            self._build_salesforce(deal)
            if deal.not_billed:  # in the ERP customer master, never set up in Stripe
                self._add_erp_customer(deal, f"C-{self._next_erp():05d}", stripe_customer="")
                continue
            self._build_stripe_customer(deal)
            if deal.usage:
                self._build_usage(index, deal)
            self._build_billing(index, deal)
        self._build_draft_renewal()
        self._build_meters()

    def _build_draft_renewal(self) -> None:
        """Contoso's July renewal invoice, drafted by Stripe when the period rolled over at
        midnight and finalized about an hour later: the extraction (00:30) finds it in draft.
        It is pending, never an invoice q2c posts or reports failed."""
        index, deal = next((i, d) for i, d in enumerate(self.deals) if d.name == "Contoso Retail")
        periods = _billing_periods(deal)
        start = periods[-1][1]
        invoice = self._cycle_invoice(index, deal, len(periods), start, _add_months(start, 1))
        created = datetime.combine(start, datetime.min.time())
        invoice.update(
            status="draft", number=None, created=_unix(created), effective_at=None,
            due_date=None, webhooks_delivered_at=None,
            automatically_finalizes_at=_unix(created + timedelta(hours=1)),
            amount_paid=0, amount_remaining=invoice["amount_due"], attempted=False,
            attempt_count=0,
        )
        invoice["status_transitions"].update(finalized_at=None, paid_at=None)

    def _build_meters(self) -> None:
        """Stripe's billing meter for API calls and its daily event summaries per customer: what
        Stripe itself counted, compared with q2c's rated usage and the invoiced quantity
        (``fct_usage_source_tieout``). A summary names no customer; the extraction adds the
        ``customer`` it asked for (``BillingExtractor.meter_event_summaries``)."""
        if not self.usage_rows:
            return
        created = _unix(datetime(2026, 3, 20, 9, 0))
        self.stripe["billing_meters"].append({
            "id": API_METER, "object": "billing.meter", "created": created,
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "default_aggregation": {"formula": "sum"}, "display_name": "API calls",
            "event_name": "api_call", "event_time_window": None, "livemode": False,
            "status": "active", "status_transitions": {"deactivated_at": None},
            "updated": created, "value_settings": {"event_payload_key": "value"},
        })
        by_day: dict[tuple[str, date], int] = {}
        for row in self.usage_rows:
            key = (row["stripe_customer_id"], row["timestamp"].date())
            by_day[key] = by_day.get(key, 0) + int(row["quantity"])
        for (customer, day), value in sorted(by_day.items()):
            start = _unix(day)
            self.stripe["billing_meter_event_summaries"].append({
                "id": _stable_id("mtrusum", f"{customer}|{day.isoformat()}"),
                "object": "billing.meter_event_summary", "aggregated_value": value,
                "customer": customer, "end_time": start + 86_400, "livemode": False,
                "meter": API_METER, "start_time": start,
            })

    def _build_catalog(self) -> None:
        created = datetime(2025, 11, 3, 9, 0)
        for code, (name, family, _pattern, unit, charge, frequency, billing) in CATALOG.items():
            self._add_product(code, name, family, unit, charge, frequency, billing, created, True)
        code, name, family = UNKNOWN_PRODUCT
        self._add_product(code, name, family, None, "Recurring", "Monthly", "Advance", created,
                          False)
        for tax_code in TAX_CODES:
            self._tax_rates[tax_code] = self.stripe_id("txr")

    def _add_product(
        self, code: str, name: str, family: str, unit: str | None, charge: str,
        frequency: str | None, billing: str | None, created: datetime, active: bool,
    ) -> None:
        product_id = self.sf_id("01t")
        self._sf_products[code] = product_id
        self.sf["Product2"].append({
            **_sf_header("Product2", product_id, created, created),
            "Name": name, "ProductCode": code, "Family": family, "IsActive": active,
            "Description": f"{name} ({code})", "QuantityUnitOfMeasure": unit or "Each",
            "CurrencyIsoCode": "USD", "SBQQ__ChargeType__c": charge,
            "SBQQ__BillingFrequency__c": frequency, "SBQQ__BillingType__c": billing,
            "SBQQ__SubscriptionPricing__c": "Fixed Price" if charge == "Recurring" else None,
            "SBQQ__SubscriptionTerm__c": TERM_MONTHS if charge != "One-Time" else None,
            "SBQQ__SubscriptionType__c": "Renewable" if charge != "One-Time" else "One-time",
        })
        stripe_product = self.stripe_id("prod")
        self._stripe_products[code] = stripe_product
        self.stripe["products"].append({
            "id": stripe_product, "object": "product", "active": active,
            "created": _unix(created), "default_price": None, "description": name,
            "images": [], "livemode": False, "marketing_features": [],
            "metadata": {"sf_product_code": code, "sf_product_id": product_id}, "name": name,
            "package_dimensions": None, "shippable": None, "statement_descriptor": None,
            "tax_code": None, "type": "service", "unit_label": unit, "updated": _unix(created),
            "url": None,
        })

    def _plan_deals(self) -> list[_Deal]:
        us = ("US01", "USD", "US")
        uk = ("UK01", "GBP", "GB")
        deals = [
            _Deal("Northwind Analytics", *us, "San Francisco", "CA", "US-CA", 20,
                  date(2026, 1, 1), date(2025, 12, 22), onboarding=True, usage=True,
                  late_onboarding=True),
            _Deal("Contoso Retail", *us, "Portland", "OR", "US-OR", 10, date(2026, 1, 1),
                  date(2025, 12, 29), upgrade=(date(2026, 3, 16), 5)),
            _Deal("Fabrikam Media", *uk, "London", None, "GB-VAT20", 8, date(2026, 2, 1),
                  date(2026, 1, 27), cancel_on=date(2026, 5, 1), uncollectible_last=True),
            _Deal("Globex Corporation", *us, "Austin", "TX", "US-TX", 25, date(2026, 1, 1),
                  date(2025, 12, 30), discount_bps=750, onboarding=True, ps_days=10,
                  credit_note_invoice=2, void_credit_note_invoice=3),
            _Deal("Initech Ltd", *uk, "Manchester", None, "GB-VAT20", 12, date(2026, 1, 1),
                  date(2025, 12, 31), discount_bps=1000, refund_invoice=1, coupon=True),
            _Deal("Mueller Logistik GmbH", "UK01", "EUR", "DE", "Hamburg", None, "GB-RC", 15,
                  date(2026, 2, 1), date(2026, 1, 26), onboarding=True, usage=True),
            _Deal("Umbrella Supplies", *us, "Dallas", "TX", "US-TX", 5, date(2026, 3, 1),
                  date(2026, 2, 24), unknown_product=True),
            _Deal("Shadow Labs Inc", *us, "Los Angeles", "CA", "US-CA", 6, date(2026, 2, 1),
                  date(2026, 1, 28), in_erp=False),
            _Deal("Britannia Tea Co", *uk, "Bristol", None, "GB-VAT20", 4, date(2026, 3, 1),
                  date(2026, 2, 25), wrong_currency_invoice=2),
            _Deal("Hooli Holdings", *us, "San Francisco", "CA", "US-CA", 7, date(2026, 2, 1),
                  date(2026, 1, 29), duplicate_invoice=1),
            _Deal("Vandelay Industries", *us, "Austin", "TX", "US-TX", 9, date(2026, 4, 1),
                  date(2026, 3, 27), negative_row=True),
        ]
        for number in range(REGULAR_CUSTOMERS_PER_SCALE * self.scale):
            base = _REGULAR_NAMES[number % len(_REGULAR_NAMES)]
            cycle = number // len(_REGULAR_NAMES)
            name = base if cycle == 0 else f"{base} {cycle + 1}"
            start = date(2026, self.rng.randint(1, 4), 1)
            activated = start - timedelta(days=self.rng.randint(2, 12))
            if self.rng.random() < 0.6:
                city, state, tax_code = self.rng.choice(_US_PLACES)
                deal = _Deal(name, "US01", "USD", "US", city, state, tax_code,
                             self.rng.randint(5, 40), start, activated)
                deal.usage = self.rng.random() < 0.6
            else:
                deal = _Deal(name, "UK01", "GBP", "GB", self.rng.choice(_UK_PLACES), None,
                             "GB-VAT20", self.rng.randint(5, 40), start, activated)
            deal.discount_bps = self.rng.choice(DISCOUNTS_BPS)
            deal.onboarding = self.rng.random() < 0.5
            deal.ps_days = self.rng.choice([0, 0, 5, 10])
            deals.append(deal)
        # Added last so the random streams (ids, dates, usage) of every deal above are unchanged.
        deals.append(
            _Deal("Wayne Enterprises", "UK01", "USD", "GB", "London", None, "GB-VAT20", 6,
                  date(2026, 2, 1), date(2026, 1, 23), contracting_entity="US01",
                  paid_after_days=7),
        )
        deals.append(
            _Deal("Stark Industries", "US01", "USD", "US", "Los Angeles", "CA", "US-CA", 10,
                  date(2026, 1, 1), date(2025, 12, 18), annual=True, cancel_on=date(2026, 4, 1),
                  refund_unused=True, paid_after_days=5),
        )
        deals.append(
            _Deal("Pied Piper Inc", "US01", "USD", "US", "Palo Alto", "CA", "US-CA", 8,
                  date(2026, 6, 1), date(2026, 5, 21), not_billed=True),
        )
        return deals

    # ---------------------------------------------------------------- Salesforce
    def _build_salesforce(self, deal: _Deal) -> None:
        signed = datetime.combine(deal.activated, datetime.min.time()) + timedelta(
            hours=self.rng.randint(9, 17), minutes=self.rng.randint(0, 59)
        )
        created = signed - timedelta(days=self.rng.randint(10, 30))
        account_id = self.sf_id("001")
        deal.ids.update(account=account_id)
        deal.ids["stripe_customer"] = self.stripe_id("cus")
        self.sf["Account"].append({
            **_sf_header("Account", account_id, created, created),
            "Name": deal.name, "Type": "Customer", "Industry": "Technology", "ParentId": None,
            "BillingCity": deal.city, "BillingState": deal.state, "BillingCountry": deal.country,
            "CurrencyIsoCode": deal.currency, "OwnerId": "005Hp00000Q2cOwIAF",
            # a customer billing never set up has no Stripe customer to name
            "Stripe_Customer_Id__c": None if deal.not_billed else deal.ids["stripe_customer"],
        })
        opportunity_id = self.sf_id("006")
        contract_id = self.sf_id("800")
        deal.ids.update(opportunity=opportunity_id, contract=contract_id)
        lines = self._contract_lines(deal)
        amount = sum((line["net_price"] * Decimal(line["quantity"]) for line in lines), Decimal(0))
        self.sf["Opportunity"].append({
            **_sf_header("Opportunity", opportunity_id, created, signed),
            "Name": f"{deal.name} - New Business", "AccountId": account_id,
            "StageName": "Closed Won", "IsClosed": True, "IsWon": True,
            "CloseDate": deal.activated.isoformat(), "Amount": _json_money(amount),
            "CurrencyIsoCode": deal.currency, "Type": "New Business", "Probability": 100.0,
            "ForecastCategoryName": "Closed", "Pricebook2Id": "01sHp000000Q2cPAAS",
            "ContractId": contract_id, "OwnerId": "005Hp00000Q2cOwIAF",
            "HasOpportunityLineItem": True, "SBQQ__Contracted__c": True,
            "SBQQ__AmendedContract__c": None,
        })
        for line in lines:
            self._add_opportunity_line(opportunity_id, deal, line, created)
        amendments = [deal.upgrade[0]] if deal.upgrade else []
        if deal.cancel_on:
            amendments.append(deal.cancel_on)
        last_change = signed
        contract = {
            **_sf_header("Contract", contract_id, signed, signed),
            "AccountId": account_id, "ContractNumber": f"{self._next_contract():08d}",
            "Status": "Activated", "StatusCode": "Activated",
            "StartDate": deal.start.isoformat(), "EndDate": deal.end.isoformat(),
            "ContractTerm": TERM_MONTHS, "ActivatedDate": _sf_datetime(signed),
            "CurrencyIsoCode": deal.currency, "Pricebook2Id": "01sHp000000Q2cPAAS",
            "SBQQ__Opportunity__c": opportunity_id, "SBQQ__Quote__c": None,
            "SBQQ__AmendmentStartDate__c": max(amendments).isoformat() if amendments else None,
            "SBQQ__RenewalForecast__c": False, "SBQQ__RenewalQuoted__c": False,
            "SBQQ__Evergreen__c": False,
            "Q2C_Legal_Entity__c": deal.contracting_entity,
        }
        self.sf["Contract"].append(contract)
        for line in lines:
            row_id = self._add_subscription_row(deal, line, signed)
            deal.sub_rows.setdefault(line["role"], row_id)
        if deal.upgrade:
            last_change = self._amend(deal, deal.upgrade[0], deal.upgrade[1], terminated=False)
        if deal.cancel_on:
            last_change = self._amend(deal, deal.cancel_on, -deal.seats, terminated=True)
        contract["LastModifiedDate"] = contract["SystemModstamp"] = _sf_datetime(last_change)

    def _next_contract(self) -> int:
        self._contract_number += 1
        return self._contract_number

    def _contract_lines(self, deal: _Deal) -> list[dict[str, Any]]:
        """The original CPQ lines of a deal: role, code, quantity, net unit price for the term."""
        currency = deal.currency
        seat_list = Decimal(SEAT_MONTHLY[currency] * TERM_MONTHS) / 100
        lines = [{
            "role": "seat", "code": "PLAT-SEAT", "quantity": deal.seats,
            "net_price": Decimal(deal.net_seat_monthly() * TERM_MONTHS) / 100,
            "list_price": seat_list, "start": deal.start, "end": deal.end,
        }]
        if deal.onboarding:
            price = Decimal(ONBOARDING[currency]) / 100
            lines.append({"role": "onboarding", "code": "PLAT-ONBOARD", "quantity": 1,
                          "net_price": price, "list_price": price, "start": deal.start,
                          "end": deal.start})
        if deal.ps_days:
            price = Decimal(PS_DAY[currency]) / 100
            lines.append({"role": "ps", "code": "PS-DAY", "quantity": deal.ps_days,
                          "net_price": price, "list_price": price, "start": deal.start,
                          "end": _add_months(deal.start, PS_MONTHS) - timedelta(days=1)})
        if deal.usage:
            lines.append({"role": "usage", "code": "API-CALLS", "quantity": 1,
                          "net_price": Decimal(0), "list_price": Decimal(0),
                          "start": deal.start, "end": deal.end})
        if deal.unknown_product:
            price = Decimal(LEGACY_MONTHLY * TERM_MONTHS) / 100
            lines.append({"role": "legacy", "code": UNKNOWN_PRODUCT[0], "quantity": 1,
                          "net_price": price, "list_price": price, "start": deal.start,
                          "end": deal.end})
        if deal.negative_row:
            lines.append({"role": "negative", "code": "PLAT-SEAT", "quantity": -2,
                          "net_price": lines[0]["net_price"], "list_price": seat_list,
                          "start": deal.start, "end": deal.end})
        return lines

    def _add_opportunity_line(
        self, opportunity_id: str, deal: _Deal, line: dict[str, Any], created: datetime
    ) -> None:
        item_id = self.sf_id("00k")
        net, listed = line["net_price"], line["list_price"]
        discount = (
            Decimal(0) if not listed else ((listed - net) / listed * 100).quantize(Decimal("0.01"))
        )
        self.sf["OpportunityLineItem"].append({
            **_sf_header("OpportunityLineItem", item_id, created, created),
            "OpportunityId": opportunity_id, "Product2Id": self._sf_products[line["code"]],
            "PricebookEntryId": None, "ProductCode": line["code"],
            "Name": f"{deal.name} {line['code']}", "Quantity": float(line["quantity"]),
            "UnitPrice": _json_money(net), "ListPrice": _json_money(listed),
            "TotalPrice": _json_money(net * line["quantity"]),
            "Discount": float(discount), "ServiceDate": line["start"].isoformat(),
            "Description": None, "CurrencyIsoCode": deal.currency, "SBQQ__QuoteLine__c": None,
        })

    def _add_subscription_row(
        self, deal: _Deal, line: dict[str, Any], created: datetime,
        revised: str | None = None, terminated: date | None = None,
        multiplier: Decimal = Decimal(1),
    ) -> str:
        row_id = self.sf_id("a0X")
        self._sub_number += 1
        charge = "Recurring"
        frequency: str | None = "Monthly"
        billing_type: str | None = "Advance"
        if line["code"] in CATALOG:
            _n, _f, _p, _u, charge, frequency, billing_type = CATALOG[line["code"]]
        if deal.annual and line["code"] == "PLAT-SEAT":
            frequency = "Annual"
        self.sf["SBQQ__Subscription__c"].append({
            **_sf_header("SBQQ__Subscription__c", row_id, created, created),
            "Name": f"SUB-{self._sub_number:06d}",
            "SBQQ__Contract__c": deal.ids["contract"], "SBQQ__Account__c": deal.ids["account"],
            "SBQQ__Product__c": self._sf_products[line["code"]],
            "SBQQ__ProductCode__c": line["code"],
            "SBQQ__Quantity__c": float(line["quantity"]),
            "SBQQ__StartDate__c": line["start"].isoformat(),
            "SBQQ__EndDate__c": line["end"].isoformat(),
            "SBQQ__NetPrice__c": _json_money(line["net_price"]),
            "SBQQ__ListPrice__c": _json_money(line["list_price"]),
            "SBQQ__CustomerPrice__c": _json_money(line["net_price"]),
            "SBQQ__RegularPrice__c": _json_money(line["list_price"]),
            "SBQQ__ProrateMultiplier__c": None if charge == "One-Time" else float(multiplier),
            "SBQQ__RevisedSubscription__c": revised,
            "SBQQ__TerminatedDate__c": terminated.isoformat() if terminated else None,
            "SBQQ__ChargeType__c": charge, "SBQQ__BillingFrequency__c": frequency,
            "SBQQ__BillingType__c": billing_type,
            "SBQQ__SubscriptionType__c": "One-time" if charge == "One-Time" else "Renewable",
            "CurrencyIsoCode": deal.currency,
        })
        return row_id

    def _amend(self, deal: _Deal, effective: date, delta: int, *, terminated: bool) -> datetime:
        """A CPQ amendment: an amendment opportunity and a delta subscription row."""
        created = datetime.combine(effective - timedelta(days=4), datetime.min.time()) + (
            timedelta(hours=self.rng.randint(9, 17), minutes=self.rng.randint(0, 59))
        )
        months = _remaining_months(effective, deal.end)
        unit = Decimal(_round_half_up(deal.net_seat_monthly() * months)) / 100
        list_unit = Decimal(_round_half_up(SEAT_MONTHLY[deal.currency] * months)) / 100
        multiplier = Decimal(months.numerator) / Decimal(months.denominator * TERM_MONTHS)
        line = {"role": "seat", "code": "PLAT-SEAT", "quantity": delta, "net_price": unit,
                "list_price": list_unit, "start": effective, "end": deal.end}
        opportunity_id = self.sf_id("006")
        self.sf["Opportunity"].append({
            **_sf_header("Opportunity", opportunity_id, created, created),
            "Name": f"{deal.name} - {'Cancellation' if terminated else 'Upsell'} amendment",
            "AccountId": deal.ids["account"], "StageName": "Closed Won", "IsClosed": True,
            "IsWon": True, "CloseDate": created.date().isoformat(),
            "Amount": _json_money(unit * delta), "CurrencyIsoCode": deal.currency,
            "Type": "Amendment", "Probability": 100.0, "ForecastCategoryName": "Closed",
            "Pricebook2Id": "01sHp000000Q2cPAAS", "ContractId": None,
            "OwnerId": "005Hp00000Q2cOwIAF", "HasOpportunityLineItem": True,
            "SBQQ__Contracted__c": True, "SBQQ__AmendedContract__c": deal.ids["contract"],
        })
        self._add_opportunity_line(opportunity_id, deal, line, created)
        row_id = self._add_subscription_row(
            deal, line, created, revised=deal.sub_rows["seat"],
            terminated=effective if terminated else None,
            multiplier=multiplier.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        )
        deal.sub_rows["cancel" if terminated else "upgrade"] = row_id
        return created

    # ---------------------------------------------------------------- Stripe customer
    def _build_stripe_customer(self, deal: _Deal) -> None:
        created = datetime.combine(deal.activated, datetime.min.time()) + timedelta(hours=18)
        prefix = "".join(self.rng.choice(_BASE62[10:36]) for _ in range(8))
        deal.ids["invoice_prefix"] = prefix
        erp_customer_id = f"C-{self._next_erp():05d}"
        self.stripe["customers"].append({
            "id": deal.ids["stripe_customer"], "object": "customer",
            "address": {"city": deal.city, "country": deal.country, "line1": "1 Main Street",
                        "line2": None, "postal_code": None, "state": deal.state},
            "balance": 0, "created": _unix(created), "currency": deal.currency.lower(),
            "default_source": None, "delinquent": False, "description": None,
            "email": f"billing@{_slug(deal.name)}.example", "invoice_prefix": prefix,
            "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                 "footer": None, "rendering_options": None},
            "livemode": False,
            "metadata": {"sf_account_id": deal.ids["account"],
                         "erp_customer_id": erp_customer_id if deal.in_erp else ""},
            "name": deal.name, "preferred_locales": [], "shipping": None,
            "tax_exempt": "reverse" if deal.tax_code == "GB-RC" else "none",
            "test_clock": None,
        })
        if deal.in_erp:
            self._add_erp_customer(deal, erp_customer_id, deal.ids["stripe_customer"])

    def _add_erp_customer(self, deal: _Deal, erp_customer_id: str, stripe_customer: str) -> None:
        self.erp_customers.append({
            "erp_customer_id": erp_customer_id, "name": deal.name,
            "sf_account_id": deal.ids["account"], "stripe_customer_id": stripe_customer,
            "legal_entity": deal.entity, "currency": deal.currency,
            "country": deal.country, "tax_region": deal.tax_code,
        })

    def _next_erp(self) -> int:
        self._erp_number += 1
        return self._erp_number

    def _price(
        self, code: str, currency: str, unit_amount: int, inclusive: bool, kind: str,
        per: int = 1,
    ) -> dict[str, Any]:
        """A Stripe price (created once per product, currency, amount, tax behaviour, kind and
        package size ``per``: a price per ``per`` units, rounded up)."""
        key = (code, currency, unit_amount, inclusive, kind, per)
        if key not in self._prices:
            price_id = self.stripe_id("price")
            created = _unix(datetime(2025, 11, 3, 10, 0)) + len(self._prices)
            recurring = None
            if kind != "one_time":
                recurring = {"interval": "year" if kind == "licensed_yearly" else "month",
                             "interval_count": 1,
                             # one meter for API calls (Stripe: one active meter per event
                             # name); the id drawn here keeps every later id as it was
                             "meter": self.stripe_id("mtr") and API_METER
                             if kind == "metered" else None,
                             "trial_period_days": None,
                             "usage_type": "metered" if kind == "metered" else "licensed"}
                if kind == "licensed_yearly":
                    recurring["usage_type"] = "licensed"
            price = {
                "id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit",
                "created": created, "currency": currency.lower(), "custom_unit_amount": None,
                "livemode": False, "lookup_key": None, "metadata": {},
                "nickname": f"{code} {currency} {unit_amount}",
                "product": self._stripe_products[code], "recurring": recurring,
                "tax_behavior": "inclusive" if inclusive else "exclusive", "tiers_mode": None,
                "transform_quantity": {"divide_by": per, "round": "up"} if per > 1 else None,
                "type": "one_time" if kind == "one_time" else "recurring",
                "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
            }
            self._prices[key] = price
            self.stripe["prices"].append(price)
        return self._prices[key]

    def _add_coupon(self, deal: _Deal) -> None:
        """The deal's CPQ discount as a Stripe coupon: the seat is billed at a list price (its
        own price object) and the subscription's discount takes ``discount_bps`` off every seat
        line. Ids are derived from the deal's name, not drawn, so the random streams of every
        other object stay as they were."""
        seat = deal.items["seat"]
        net_unit = seat["unit"]
        list_unit = _round_half_up(Fraction(net_unit * 10_000, 10_000 - deal.discount_bps))
        price = dict(seat["price"], id=_stable_id("price", deal.name + "|list"),
                     nickname=f"PLAT-SEAT {deal.currency} {list_unit} (list)",
                     unit_amount=list_unit, unit_amount_decimal=str(list_unit))
        self.stripe["prices"].append(price)
        seat["list_price"], seat["list_unit"] = price, list_unit
        deal.ids["discount"] = _stable_id("di", deal.name)

    # ---------------------------------------------------------------- usage
    def _build_usage(self, index: int, deal: _Deal) -> None:
        first = max(USAGE_START, deal.start)
        last = AS_OF if deal.cancel_on is None else min(AS_OF, deal.cancel_on - timedelta(1))
        days = (last - first).days + 1
        if days <= 0:
            return
        counts = self.np_rng.poisson(USAGE_EVENTS_PER_DAY, size=days)
        total = int(counts.sum())
        seconds = self.np_rng.integers(0, 86_400, size=total)
        quantities = self.np_rng.integers(20, 400, size=total)
        tokens = self.np_rng.integers(0, 2**62, size=total)
        day_offsets = np.repeat(np.arange(days), counts)
        for offset, second, quantity, token in zip(
            day_offsets.tolist(), seconds.tolist(), quantities.tolist(), tokens.tolist(),
            strict=True,
        ):
            day = first + timedelta(days=offset)
            moment = datetime.combine(day, datetime.min.time()) + timedelta(seconds=second)
            self.usage_rows.append({
                "event_id": f"mev_{index:04d}{token:016x}",
                "event_name": "api_call",
                "stripe_customer_id": deal.ids["stripe_customer"],
                "sf_subscription_id": deal.sub_rows["usage"],
                "product_code": "API-CALLS",
                "quantity": quantity,
                "timestamp": moment,
            })
            period = _period_start(deal.start, day)
            key = (index, period)
            self._usage_by_period[key] = self._usage_by_period.get(key, 0) + quantity

    # ---------------------------------------------------------------- Stripe billing
    def _build_billing(self, index: int, deal: _Deal) -> None:
        currency = deal.currency
        inclusive = deal.inclusive_tax
        seat_unit = _gross(deal.net_seat_monthly() * (TERM_MONTHS if deal.annual else 1), deal)
        subscription_id = self.stripe_id("sub")
        deal.ids["subscription"] = subscription_id
        recurring = [("seat", "PLAT-SEAT", seat_unit,
                      "licensed_yearly" if deal.annual else "licensed")]
        if deal.unknown_product:
            recurring.append(("legacy", UNKNOWN_PRODUCT[0], _gross(LEGACY_MONTHLY, deal),
                              "licensed"))
        per = {}
        if deal.usage:
            unit, per["usage"] = API_CALL_PACKAGE.get(currency, (API_CALL[currency], 1))
            recurring.append(("usage", "API-CALLS", unit, "metered"))
        for role, code, unit, kind in recurring:
            deal.items[role] = {
                "id": self.stripe_id("si"), "code": code, "unit": unit,
                "price": self._price(code, currency, unit, inclusive, kind, per.get(role, 1)),
                "kind": kind,
            }
        if deal.coupon:
            self._add_coupon(deal)
        invoices: list[dict[str, Any]] = []
        if deal.late_onboarding:
            invoices.append(self._late_onboarding_invoice(deal))
        periods = _billing_periods(deal)
        for number, (start, end) in enumerate(periods):
            invoices.append(self._cycle_invoice(index, deal, number, start, end))
        self._add_subscription(deal, periods, invoices)

    def _late_onboarding_invoice(self, deal: _Deal) -> dict[str, Any]:
        created = datetime(2025, 12, 30, 9, 0)
        invoice_id = self.stripe_id("in")
        price = self._price("PLAT-ONBOARD", deal.currency, _gross(ONBOARDING[deal.currency], deal),
                            deal.inclusive_tax, "one_time")
        line = self._line(deal, invoice_id, "onboarding", price, 1, created, created,
                          "Onboarding fee", invoice_item=True, standalone=True)
        return self._finish_invoice(deal, invoice_id, created, [line], "manual", created, created,
                                    subscription=False, paid_after_days=10)

    def _cycle_invoice(
        self, index: int, deal: _Deal, number: int, start: date, end: date
    ) -> dict[str, Any]:
        created = datetime.combine(start, datetime.min.time()) + timedelta(hours=1)
        invoice_id = self.stripe_id("in")
        currency = deal.currency
        seats = deal.seats
        if deal.upgrade and deal.upgrade[0] <= start:
            seats += deal.upgrade[1]
        seat = deal.items["seat"]
        lines = [self._line(deal, invoice_id, "seat", seat["price"], seats, start, end,
                            f"{seats} x Platform seat (at {_money_text(seat['unit'], currency)}"
                            f" / {'year' if deal.annual else 'month'})",
                            subscription_item=seat["id"])]
        if deal.unknown_product:
            legacy = deal.items["legacy"]
            lines.append(self._line(deal, invoice_id, "legacy", legacy["price"], 1, start, end,
                                    "1 x Legacy premium support", subscription_item=legacy["id"]))
        if number == 0 and deal.onboarding and not deal.late_onboarding:
            price = self._price("PLAT-ONBOARD", currency, _gross(ONBOARDING[currency], deal),
                                deal.inclusive_tax, "one_time")
            lines.append(self._line(deal, invoice_id, "onboarding", price, 1, created, created,
                                    "Onboarding fee", invoice_item=True))
        if number == 0 and deal.ps_days:
            price = self._price("PS-DAY", currency, _gross(PS_DAY[currency], deal),
                                deal.inclusive_tax, "one_time")
            ps_end = _add_months(deal.start, PS_MONTHS)
            lines.append(self._line(deal, invoice_id, "ps", price, deal.ps_days, deal.start,
                                    ps_end, f"{deal.ps_days} x Professional services day",
                                    invoice_item=True))
        if deal.upgrade and number > 0:
            effective, added = deal.upgrade
            previous_start = _add_months(deal.start, number - 1)
            if previous_start < effective < start:
                lines.extend(self._proration_lines(deal, invoice_id, effective, previous_start,
                                                   start, added))
        if deal.usage and number > 0:
            previous_start = _add_months(deal.start, number - 1)
            if start > USAGE_START:
                quantity = self._usage_by_period.get((index, previous_start), 0)
                usage = deal.items["usage"]
                lines.append(self._line(deal, invoice_id, "usage", usage["price"], quantity,
                                        previous_start, start,
                                        f"{quantity} x API call overage",
                                        subscription_item=usage["id"]))
        reason = "subscription_create" if number == 0 else "subscription_cycle"
        delay = self.rng.randint(3, 45)
        if deal.paid_after_days is not None:
            delay = deal.paid_after_days
        return self._finish_invoice(
            deal, invoice_id, created, lines, reason, start, end, subscription=True,
            paid_after_days=delay, number=number,
        )

    def _proration_lines(
        self, deal: _Deal, invoice_id: str, effective: date, period_start: date,
        period_end: date, added: int,
    ) -> list[dict[str, Any]]:
        """Stripe's pair for a mid-period quantity change: credit unused, charge remaining."""
        seat = deal.items["seat"]
        remaining = Fraction((period_end - effective).days, (period_end - period_start).days)
        old, new = deal.seats, deal.seats + added
        when = _long_date(effective)
        credit = self._line(deal, invoice_id, "seat", seat["price"], old, effective, period_end,
                            f"Unused time on {old} x Platform seat after {when}",
                            subscription_item=seat["id"], proration=True,
                            amount=-_round_half_up(seat["unit"] * old * remaining))
        charge = self._line(deal, invoice_id, "seat", seat["price"], new, effective, period_end,
                            f"Remaining time on {new} x Platform seat after {when}",
                            subscription_item=seat["id"], proration=True,
                            amount=_round_half_up(seat["unit"] * new * remaining))
        return [credit, charge]

    def _line(
        self, deal: _Deal, invoice_id: str, role: str, price: dict[str, Any], quantity: int,
        start: date | datetime, end: date | datetime, description: str, *,
        subscription_item: str | None = None, invoice_item: bool = False,
        proration: bool = False, amount: int | None = None, standalone: bool = False,
    ) -> dict[str, Any]:
        if amount is None:
            per = (price.get("transform_quantity") or {}).get("divide_by", 1)
            amount = price["unit_amount"] * -(-quantity // per)  # whole packages, rounded up
        # a coupon deal's seat: billed at list, the coupon's share in discount_amounts, tax on
        # what is charged (Stripe computes tax after discounts)
        net, discounts = amount, []
        list_price = deal.items.get("seat", {}).get("list_price") if role == "seat" else None
        if list_price is not None and price is deal.items["seat"]["price"]:
            list_amount = deal.items["seat"]["list_unit"] * quantity
            discounts = [{"amount": list_amount - net, "discount": deal.ids["discount"]}]
            amount, price = list_amount, list_price
        if subscription_item and not invoice_item:
            details = {"invoice_item": self.stripe_id("ii") if proration else None,
                       "proration": proration,
                       "proration_details": {"credited_items": None},
                       "subscription": deal.ids["subscription"],
                       "subscription_item": subscription_item}
            parent = {"invoice_item_details": None, "subscription_item_details": details,
                      "type": "subscription_item_details"}
        else:
            details = {"invoice_item": self.stripe_id("ii"), "proration": False,
                       "proration_details": {"credited_items": None},
                       "subscription": None if standalone else deal.ids["subscription"]}
            parent = {"invoice_item_details": details, "subscription_item_details": None,
                      "type": "invoice_item_details"}
        return {
            "id": self.stripe_id("il"), "object": "line_item", "amount": amount,
            "currency": deal.currency.lower(), "description": description,
            "discount_amounts": discounts, "discountable": not proration, "discounts": [],
            "invoice": invoice_id, "livemode": False,
            "metadata": {"sf_contract_id": deal.ids["contract"],
                         "sf_subscription_id": deal.sub_rows[role]},
            "parent": parent,
            "period": {"end": _unix(end), "start": _unix(start)},
            "pretax_credit_amounts": [],
            "pricing": {"price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details", "unit_amount_decimal": str(price["unit_amount"])},
            "quantity": quantity, "subtotal": amount,
            "taxes": self._taxes(deal, net),
        }

    def _taxes(self, deal: _Deal, amount: int) -> list[dict[str, Any]]:
        _country, _region, bps, inclusive, reason = TAX_CODES[deal.tax_code]
        if reason is None:
            return []
        if inclusive:
            tax = _round_half_up(Fraction(amount * bps, 10_000 + bps))
            taxable = amount - tax
        else:
            tax = _round_half_up(Fraction(amount * bps, 10_000))
            taxable = amount
        return [{"amount": tax, "tax_behavior": "inclusive" if inclusive else "exclusive",
                 "tax_rate_details": {"tax_rate": self._tax_rates[deal.tax_code]},
                 "taxability_reason": reason, "taxable_amount": taxable,
                 "type": "tax_rate_details"}]

    def _finish_invoice(
        self, deal: _Deal, invoice_id: str, created: datetime, lines: list[dict[str, Any]],
        reason: str, period_start: date | datetime, period_end: date | datetime, *,
        subscription: bool, paid_after_days: int, number: int | None = None,
    ) -> dict[str, Any]:
        currency = deal.currency.lower()
        if number is not None and number == deal.wrong_currency_invoice:
            currency = "usd"
            for line in lines:
                line["currency"] = currency
        finalized = created + timedelta(hours=1)
        subtotal = sum(line["amount"] for line in lines)
        discounted = sum(d["amount"] for line in lines for d in line["discount_amounts"])
        taxes = _sum_taxes(lines)
        exclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "exclusive")
        inclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")
        total = subtotal - discounted + exclusive
        sequence = self._invoice_sequence.get(deal.name, 0) + 1
        self._invoice_sequence[deal.name] = sequence
        invoice = {
            "id": invoice_id, "object": "invoice", "account_country": deal.entity[:2],
            "account_name": "Q2C Software", "amount_due": total, "amount_overpaid": 0,
            "amount_paid": 0, "amount_remaining": total, "amount_shipping": 0,
            "attempt_count": 0, "attempted": False, "auto_advance": True,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_reason": reason, "collection_method": "send_invoice",
            "created": _unix(created), "currency": currency,
            "customer": deal.ids["stripe_customer"], "customer_email": None,
            "customer_name": deal.name, "description": None,
            "discounts": [deal.ids["discount"]] if discounted else [],
            "due_date": _unix(finalized + timedelta(days=30)),
            "effective_at": _unix(finalized), "ending_balance": 0, "footer": None,
            "hosted_invoice_url": None, "invoice_pdf": None, "issuer": {"type": "self"},
            "last_finalization_error": None,
            "lines": {"data": lines, "has_more": False, "object": "list",
                      "total_count": len(lines), "url": f"/v1/invoices/{invoice_id}/lines"},
            "livemode": False, "metadata": {"sf_contract_id": deal.ids["contract"]},
            "next_payment_attempt": None,
            "number": f"{deal.ids['invoice_prefix']}-{sequence:04d}", "on_behalf_of": None,
            "parent": {"quote_details": None,
                       "subscription_details": {
                           "metadata": {"sf_contract_id": deal.ids["contract"]},
                           "subscription": deal.ids["subscription"]},
                       "type": "subscription_details"} if subscription else None,
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "period_end": _unix(period_end), "period_start": _unix(period_start),
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "receipt_number": None, "starting_balance": 0, "statement_descriptor": None,
            "status": "open",
            "status_transitions": {"finalized_at": _unix(finalized),
                                   "marked_uncollectible_at": None, "paid_at": None,
                                   "voided_at": None},
            "subtotal": subtotal, "subtotal_excluding_tax": subtotal - inclusive,
            "test_clock": None, "total": total,
            "total_discount_amounts": [{"amount": discounted, "discount": deal.ids["discount"]}]
            if discounted else [],
            "total_excluding_tax": total - exclusive - inclusive,
            "total_pretax_credit_amounts": [], "total_taxes": taxes,
            "webhooks_delivered_at": _unix(created),
        }
        self.stripe["invoices"].append(invoice)
        due = total
        if number is not None and number == deal.credit_note_invoice:
            due -= self._credit_note(deal, invoice, finalized + timedelta(days=4), void=False)
        if number is not None and number == deal.void_credit_note_invoice:
            self._credit_note(deal, invoice, finalized + timedelta(days=2), void=True)
        invoice["amount_due"] = invoice["amount_remaining"] = due
        last = number is not None and deal.cancel_on is not None and (
            _add_months(deal.start, number + 1) >= deal.cancel_on
        )
        paid_at = finalized + timedelta(days=paid_after_days, minutes=self.rng.randint(0, 600))
        if deal.uncollectible_last and last:
            invoice["status"] = "uncollectible"
            invoice["status_transitions"]["marked_uncollectible_at"] = _unix(
                datetime(2026, 6, 15, 12, 0))
        elif paid_at.date() <= AS_OF:
            self._pay(deal, invoice, due, paid_at, number)
        if number is not None and number == deal.duplicate_invoice:
            self.stripe["invoices"].append(_altered_copy(invoice))
        return invoice

    def _pay(
        self, deal: _Deal, invoice: dict[str, Any], amount: int, paid_at: datetime,
        number: int | None,
    ) -> None:
        invoice["status"] = "paid"
        invoice["amount_paid"], invoice["amount_remaining"] = amount, 0
        invoice["attempted"], invoice["attempt_count"] = True, 1
        invoice["status_transitions"]["paid_at"] = _unix(paid_at)
        intent = self.stripe_id("pi")
        payment = {
            "id": self.stripe_id("inpay"), "object": "invoice_payment", "amount_paid": amount,
            "amount_requested": amount, "created": invoice["status_transitions"]["finalized_at"],
            "currency": invoice["currency"], "invoice": invoice["id"], "is_default": True,
            "livemode": False, "payment": {"payment_intent": intent, "type": "payment_intent"},
            "status": "paid", "status_transitions": {"canceled_at": None,
                                                     "paid_at": _unix(paid_at)},
        }
        self.stripe["invoice_payments"].append(payment)
        if number == 0 and deal.refund_unused and deal.cancel_on is not None:
            self._refund_unused_term(deal, invoice, intent)
        if number is not None and number == deal.refund_invoice:
            refunded = datetime.combine(paid_at.date() + timedelta(days=12),
                                        datetime.min.time()) + timedelta(hours=15)
            self.stripe["refunds"].append({
                "id": self.stripe_id("re"), "object": "refund",
                "amount": deal.items["seat"]["unit"], "balance_transaction": self.stripe_id("txn"),
                "charge": self.stripe_id("ch"), "created": _unix(refunded),
                "currency": invoice["currency"], "destination_details": {"type": "card"},
                "metadata": {"invoice_id": invoice["id"], "reason": "one seat never activated"},
                "payment_intent": intent, "reason": "requested_by_customer",
                "receipt_number": None, "source_transfer_reversal": None,
                "status": "succeeded", "transfer_reversal": None,
            })

    def _refund_unused_term(self, deal: _Deal, invoice: dict[str, Any], intent: str) -> None:
        """Cancellation of a prepaid term: a post-payment credit note (reason order_change) for
        the unused months of the seat line with its tax, refunded to the card. The credit note
        names its refund (``refunds[].refund``), as Stripe does."""
        assert deal.cancel_on is not None
        issued = datetime.combine(deal.cancel_on, datetime.min.time()) + timedelta(hours=10)
        seat_line = invoice["lines"]["data"][0]
        unused = _remaining_months(deal.cancel_on, deal.end)
        amount = _round_half_up(deal.net_seat_monthly() * deal.seats * unused)
        taxes = self._taxes(deal, amount)
        exclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "exclusive")
        inclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")
        total = amount + exclusive
        note_id, refund_id = self.stripe_id("cn"), self.stripe_id("re")
        self.stripe["credit_notes"].append({
            "id": note_id, "object": "credit_note", "amount": total, "amount_shipping": 0,
            "created": _unix(issued), "currency": invoice["currency"],
            "customer": invoice["customer"], "customer_balance_transaction": None,
            "discount_amount": 0, "discount_amounts": [], "effective_at": _unix(issued),
            "invoice": invoice["id"],
            "lines": {"data": [{
                "amount": amount,
                "description": f"Unused time on {deal.seats} x Platform seat after "
                               f"{_long_date(deal.cancel_on)}",
                "discount_amount": 0, "discount_amounts": [], "id": self.stripe_id("cnli"),
                "invoice_line_item": seat_line["id"], "livemode": False,
                "object": "credit_note_line_item", "pretax_credit_amounts": [],
                "quantity": deal.seats, "taxes": taxes, "type": "invoice_line_item",
                "unit_amount": None, "unit_amount_decimal": None}],
                "has_more": False, "object": "list", "total_count": 1,
                "url": f"/v1/credit_notes/{note_id}/lines"},
            "livemode": False, "memo": "Subscription cancelled: unused term refunded",
            "metadata": {}, "number": f"{invoice['number']}-CN-01", "out_of_band_amount": None,
            "pdf": None, "post_payment_amount": total, "pre_payment_amount": 0,
            "pretax_credit_amounts": [], "reason": "order_change",
            "refunds": [{"amount_refunded": total, "payment_record_refund": None,
                         "refund": refund_id, "type": "refund"}],
            "shipping_cost": None, "status": "issued",
            "subtotal": amount, "subtotal_excluding_tax": amount - inclusive,
            "total": total, "total_excluding_tax": amount - inclusive,
            "total_taxes": taxes, "type": "post_payment", "voided_at": None,
        })
        invoice["post_payment_credit_notes_amount"] = total
        self.stripe["refunds"].append({
            "id": refund_id, "object": "refund", "amount": total,
            "balance_transaction": self.stripe_id("txn"), "charge": self.stripe_id("ch"),
            "created": _unix(issued + timedelta(minutes=2)), "currency": invoice["currency"],
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "metadata": {}, "payment_intent": intent, "reason": "requested_by_customer",
            "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
            "transfer_reversal": None,
        })

    def _credit_note(
        self, deal: _Deal, invoice: dict[str, Any], issued: datetime, *, void: bool
    ) -> int:
        """A pre-payment credit note against the seat line; returns its total (0 when void)."""
        seat_line = invoice["lines"]["data"][0]
        amount = seat_line["amount"] // 2 if not void else deal.items["seat"]["unit"]
        taxes = self._taxes(deal, amount)
        exclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "exclusive")
        inclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")
        note_id = self.stripe_id("cn")
        self.stripe["credit_notes"].append({
            "id": note_id, "object": "credit_note", "amount": amount + exclusive,
            "amount_shipping": 0, "created": _unix(issued), "currency": invoice["currency"],
            "customer": invoice["customer"], "customer_balance_transaction": None,
            "discount_amount": 0, "discount_amounts": [], "effective_at": _unix(issued),
            "invoice": invoice["id"],
            "lines": {"data": [{
                "amount": amount, "description": seat_line["description"],
                "discount_amount": 0, "discount_amounts": [], "id": self.stripe_id("cnli"),
                "invoice_line_item": seat_line["id"], "livemode": False,
                "object": "credit_note_line_item", "pretax_credit_amounts": [], "quantity": 1,
                "taxes": taxes, "type": "invoice_line_item", "unit_amount": amount,
                "unit_amount_decimal": str(amount)}],
                "has_more": False, "object": "list", "total_count": 1,
                "url": f"/v1/credit_notes/{note_id}/lines"},
            "livemode": False,
            "memo": "Service credit: platform outage" if not void else "Issued in error",
            "metadata": {}, "number": f"{invoice['number']}-CN-01", "out_of_band_amount": None,
            "pdf": None, "post_payment_amount": 0, "pre_payment_amount": amount + exclusive,
            "pretax_credit_amounts": [], "reason": "product_unsatisfactory", "refunds": [],
            "shipping_cost": None, "status": "void" if void else "issued",
            "subtotal": amount, "subtotal_excluding_tax": amount - inclusive,
            "total": amount + exclusive, "total_excluding_tax": amount - inclusive,
            "total_taxes": taxes, "type": "pre_payment",
            "voided_at": _unix(issued + timedelta(days=1)) if void else None,
        })
        if void:
            return 0
        invoice["pre_payment_credit_notes_amount"] = amount + exclusive
        return amount + exclusive

    def _add_subscription(
        self, deal: _Deal, periods: list[tuple[date, date]], invoices: list[dict[str, Any]]
    ) -> None:
        created = datetime.combine(deal.activated, datetime.min.time()) + timedelta(hours=19)
        current_start, current_end = periods[-1]
        canceled = deal.cancel_on is not None
        seats = deal.seats + (deal.upgrade[1] if deal.upgrade else 0)
        items = []
        for role, item in deal.items.items():
            entry = {
                "id": item["id"], "object": "subscription_item", "created": _unix(created),
                "current_period_end": _unix(current_end),
                "current_period_start": _unix(current_start), "discounts": [],
                "metadata": {"sf_subscription_id": deal.sub_rows[role]},
                "price": item.get("list_price", item["price"]),
                "subscription": deal.ids["subscription"], "tax_rates": [],
            }
            if item["kind"] != "metered":
                entry["quantity"] = seats if role == "seat" else 1
            items.append(entry)
        cancel_requested = (
            datetime.combine(deal.cancel_on - timedelta(days=11), datetime.min.time())
            + timedelta(hours=14) if deal.cancel_on else None
        )
        self.stripe["subscriptions"].append({
            "id": deal.ids["subscription"], "object": "subscription",
            "billing_cycle_anchor": _unix(deal.start), "cancel_at": _unix(deal.cancel_on)
            if canceled else None, "cancel_at_period_end": False,
            "canceled_at": _unix(cancel_requested) if cancel_requested else None,
            "cancellation_details": {"comment": None, "feedback": "too_expensive"
                                     if canceled else None,
                                     "reason": "cancellation_requested" if canceled else None},
            "collection_method": "send_invoice", "created": _unix(created),
            "currency": deal.currency.lower(), "customer": deal.ids["stripe_customer"],
            "days_until_due": 30, "default_payment_method": None, "description": None,
            "discounts": [deal.ids["discount"]] if deal.coupon else [],
            "ended_at": _unix(deal.cancel_on) if canceled else None,
            "items": {"data": items, "has_more": False, "object": "list",
                      "total_count": len(items),
                      "url": f"/v1/subscription_items?subscription={deal.ids['subscription']}"},
            "latest_invoice": invoices[-1]["id"], "livemode": False,
            "metadata": {"sf_account_id": deal.ids["account"],
                         "sf_contract_id": deal.ids["contract"]},
            "start_date": _unix(deal.start), "status": "canceled" if canceled else "active",
            "test_clock": None, "trial_end": None, "trial_start": None,
        })

    # ---------------------------------------------------------------- write
    def write(self, out_dir: Path) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, records in self.sf.items():
            ordered = sorted(records, key=lambda r: (r["SystemModstamp"], r["Id"]))
            counts[f"salesforce/{name}.json"] = _write_json(
                out_dir / "salesforce" / f"{name}.json", ordered)
        counts["salesforce/UserInfo.json"] = _write_json(
            out_dir / "salesforce" / "UserInfo.json", [SALESFORCE_USER_INFO])
        for name, objects in self.stripe.items():
            ordered = sorted(objects, key=lambda o: (-o.get("created", o.get("start_time", 0)),
                                                      o["id"]))
            counts[f"stripe/{name}.json"] = _write_json(out_dir / "stripe" / f"{name}.json",
                                                        ordered)
        for name, rows in self._erp_tables().items():
            counts[f"erp/{name}.csv"] = _write_csv(out_dir / "erp" / f"{name}.csv", rows)
        counts.update(self._write_usage(out_dir / "usage"))
        manifest = {
            "seed": self.seed, "scale": self.scale, "as_of": AS_OF.isoformat(),
            # half an hour into 1 July: Stripe has drafted July's renewal, not finalized it
            "extracted_at": (AS_OF + timedelta(days=1)).isoformat() + "T00:30:00Z",
            "generator": "q2c_pipeline.sources.sample_company",
            "generator_version": GENERATOR_VERSION, "stripe_api_version": STRIPE_API_VERSION,
            "salesforce_api_version": SALESFORCE_API_VERSION,
            "counts": dict(sorted(counts.items())),
            # first and last UTC day of dated activity: the UI's partitions span these
            "activity": self._activity(),
        }
        _write_json(out_dir / "manifest.json", manifest)
        (out_dir / "roles.yaml").write_text(SAMPLE_ROLES, encoding="utf-8")
        return dict(sorted(counts.items()))

    def _activity(self) -> dict[str, list[str]]:
        invoice_days = sorted(datetime.fromtimestamp(i["created"], UTC).date().isoformat()
                              for i in self.stripe["invoices"])
        usage_days = sorted(row["timestamp"].date().isoformat() for row in self.usage_rows)
        activity = {}
        if invoice_days:
            activity["invoices"] = [invoice_days[0], invoice_days[-1]]
        if usage_days:
            activity["usage"] = [usage_days[0], usage_days[-1]]
        return activity

    def _write_usage(self, folder: Path) -> dict[str, int]:
        folder.mkdir(parents=True, exist_ok=True)
        by_day: dict[str, list[dict[str, Any]]] = {}
        for row in self.usage_rows:
            by_day.setdefault(row["timestamp"].date().isoformat(), []).append(row)
        counts = {}
        schema = pa.schema([
            ("event_id", pa.string()), ("event_name", pa.string()),
            ("stripe_customer_id", pa.string()), ("sf_subscription_id", pa.string()),
            ("product_code", pa.string()), ("quantity", pa.int64()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
        ])
        for day in sorted(by_day):
            rows = sorted(by_day[day], key=lambda r: (r["timestamp"], r["event_id"]))
            columns = {name: [row[name] for row in rows] for name in USAGE_COLUMNS}
            columns["timestamp"] = [moment.replace(tzinfo=UTC) for moment in columns["timestamp"]]
            table = pa.table(columns, schema=schema)
            name = f"usage_events_{day}.parquet"
            pq.write_table(table, folder / name, compression="snappy")
            counts[f"usage/{name}"] = len(rows)
        return counts

    def _erp_tables(self) -> dict[str, list[dict[str, str]]]:
        entities = [{k: e[k] for k in ("legal_entity", "name", "functional_currency", "country",
                                       "calendar")} for e in LEGAL_ENTITIES]
        accounts = []
        for position, entity in enumerate(("US01", "UK01")):
            for account, numbers in GL_ACCOUNTS.items():
                accounts.append({"legal_entity": entity, "account": account,
                                 "gl_account": numbers[position], "gl_name": numbers[2],
                                 "department": "FIN"})
        periods = []
        for entity in ("US01", "UK01"):
            month = date(2025, 12, 1)
            while month <= date(2026, 12, 1):
                closed = month < date(2026, 1, 1)
                periods.append({"legal_entity": entity, "period": month.strftime("%Y-%m"),
                                "status": "closed" if closed else "open",
                                "closed_at": "2026-01-05T00:00:00Z" if closed else ""})
                month = _add_months(month, 1)
        products = [{"product_code": code, "name": values[0], "family": values[1],
                     "revenue_pattern": values[2], "ssp_amount": CATALOG_SSP[code],
                     "ssp_currency": "USD", "ssp_term_months": CATALOG_SSP_TERM.get(code, "")}
                    for code, values in CATALOG.items()]
        tax_codes = [{"tax_code": code, "country": country, "region": region or "",
                      "rate_bps": str(bps), "is_inclusive": "true" if inclusive else "false",
                      "stripe_tax_rate_id": self._tax_rates[code]}
                     for code, (country, region, bps, inclusive, _r) in TAX_CODES.items()]
        customers = sorted(self.erp_customers, key=lambda c: c["erp_customer_id"])
        return {"legal_entities": entities, "chart_of_accounts": accounts,
                "accounting_periods": periods, "products": products, "tax_codes": tax_codes,
                "fx_rates": self._fx_rates(), "customers": customers}

    def _fx_rates(self) -> list[dict[str, str]]:
        """Daily rates 2025-12-01..as-of: EUR->USD, GBP->USD and the EUR->GBP cross."""
        fx_rng = random.Random(self.seed * 7919 + 17)
        eur_usd, gbp_usd = Decimal("1.0850"), Decimal("1.2700")
        rows = []
        day = date(2025, 12, 1)
        while day <= AS_OF:
            eur_gbp = (eur_usd / gbp_usd).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
            for source, target, rate in (("EUR", "USD", eur_usd), ("GBP", "USD", gbp_usd),
                                         ("EUR", "GBP", eur_gbp)):
                rows.append({"rate_date": day.isoformat(), "from_currency": source,
                             "to_currency": target, "rate": f"{rate:.6f}"})
            eur_usd += Decimal(fx_rng.randint(-40, 40)) / 10_000
            gbp_usd += Decimal(fx_rng.randint(-40, 40)) / 10_000
            day += timedelta(days=1)
        return rows


# -------------------------------------------------------------------- helpers
def _altered_copy(invoice: dict[str, Any]) -> dict[str, Any]:
    """The duplicate-id defect: the same invoice id re-sent with one more seat and no payment."""
    copy = json.loads(json.dumps(invoice))
    seat_line = copy["lines"]["data"][0]
    unit = seat_line["amount"] // seat_line["quantity"]
    seat_line["quantity"] += 1
    seat_line["amount"] = seat_line["subtotal"] = seat_line["amount"] + unit
    for tax in seat_line["taxes"]:
        tax["taxable_amount"] = seat_line["amount"]
    copy["subtotal"] += unit
    copy["subtotal_excluding_tax"] += unit
    copy["total"] += unit
    copy["total_excluding_tax"] += unit
    copy["amount_due"] = copy["amount_remaining"] = copy["total"]
    copy["amount_paid"] = 0
    copy["status"] = "open"
    copy["status_transitions"]["paid_at"] = None
    return copy


def _stable_id(prefix: str, key: str) -> str:
    """A Stripe-shaped id derived from ``key`` (no draw from the generator's random stream)."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "big")
    return prefix + "_1" + _base62(digest, 23)[-23:]


def _sum_taxes(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for line in lines:
        for tax in line["taxes"]:
            key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"],
                   tax["taxability_reason"])
            entry = totals.setdefault(key, {**tax, "amount": 0, "taxable_amount": 0})
            entry["amount"] += tax["amount"]
            entry["taxable_amount"] += tax["taxable_amount"]
    return [totals[key] for key in sorted(totals, key=str)]


def _billing_periods(deal: _Deal) -> list[tuple[date, date]]:
    if deal.annual:
        return [(deal.start, _add_months(deal.start, TERM_MONTHS))] if deal.start <= AS_OF else []
    periods = []
    start = deal.start
    while start <= AS_OF and (deal.cancel_on is None or start < deal.cancel_on):
        end = _add_months(start, 1)
        periods.append((start, end))
        start = end
    return periods


def _period_start(anchor: date, day: date) -> date:
    months = (day.year - anchor.year) * 12 + day.month - anchor.month
    start = _add_months(anchor, months)
    return start if start <= day else _add_months(anchor, months - 1)


def _remaining_months(effective: date, end_inclusive: date) -> Fraction:
    """Months from ``effective`` to the contract end: whole months plus the first partial month
    by days (CPQ "Monthly + Daily" proration), for contracts starting on the 1st."""
    stop = end_inclusive + timedelta(days=1)
    if effective.day == 1:
        partial = Fraction(0)
        first_full = effective
    else:
        days_in_month = calendar.monthrange(effective.year, effective.month)[1]
        partial = Fraction(days_in_month - effective.day + 1, days_in_month)
        first_full = _add_months(effective.replace(day=1), 1)
    whole = (stop.year - first_full.year) * 12 + stop.month - first_full.month
    return whole + partial


def _gross(net_minor: int, deal: _Deal) -> int:
    """Stripe unit price: net for tax-exclusive customers, net x (1 + VAT) when inclusive."""
    _c, _r, bps, inclusive, _reason = TAX_CODES[deal.tax_code]
    if not inclusive:
        return net_minor
    return _round_half_up(Fraction(net_minor * (10_000 + bps), 10_000))


def _round_half_up(value: Fraction | int) -> int:
    value = Fraction(value)
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    return sign * int(magnitude + Fraction(1, 2))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _unix(moment: date | datetime) -> int:
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, datetime.min.time())
    return calendar.timegm(moment.timetuple())


def _sf_datetime(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _sf_header(object_name: str, record_id: str, created: datetime, modified: datetime) -> dict:
    return {
        "attributes": {"type": object_name,
                       "url": f"/services/data/v{SALESFORCE_API_VERSION}/sobjects/"
                              f"{object_name}/{record_id}"},
        "Id": record_id, "IsDeleted": False, "CreatedDate": _sf_datetime(created),
        "LastModifiedDate": _sf_datetime(modified), "SystemModstamp": _sf_datetime(modified),
    }


def _json_money(amount: Decimal) -> float:
    """A Salesforce currency field on the wire: a JSON number (2 decimals, shortest repr)."""
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _money_text(minor: int, currency: str) -> str:
    return f"{currency} {Decimal(minor) / 100:.2f}"


def _long_date(day: date) -> str:
    return f"{day.day:02d} {day.strftime('%b %Y')}"


def _slug(name: str) -> str:
    return "".join(char for char in name.lower() if char.isalnum())


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = _BASE62[remainder] + digits
    return digits.rjust(width, "0")


def _write_json(path: Path, data: Any) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_bytes(text.encode("utf-8"))
    return len(data) if isinstance(data, list) else 1


def _write_csv(path: Path, rows: list[dict[str, str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return len(rows)
