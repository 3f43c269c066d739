"""Salesforce REST records (Account, Contract, SBQQ__Subscription__c, ...) -> canonical frames.

Records arrive as the query API returns them (``attributes``, 18-character ids, JSON-number money,
``2026-01-05T10:15:00.000+0000`` datetimes). Money is read through ``str`` into ``Decimal`` and
converted to minor units; it never goes through float arithmetic. Mappers keep every record: a
bad value comes through as sent, an unreadable one as null, so validation can quarantine it.

CPQ semantics (Salesforce CPQ "Amend Contracts", help.salesforce.com): an amendment inserts a delta
``SBQQ__Subscription__c`` row (quantity change, ``SBQQ__RevisedSubscription__c`` = the row it
revises, ``SBQQ__StartDate__c`` = amendment start). Without CPQ, contract lines come from the
OpportunityLineItems of the contract's opportunity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pandas as pd

from q2c_pipeline.core.money import to_minor
from q2c_pipeline.sources.wire import (
    FIELD_PROBLEMS,
    PAYLOAD_COLUMN,
    FieldProblems,
    build_frame,
    column_spec,
    decimal_from_wire,
    float_from_wire,
    minor_from_wire,
    normalize_salesforce_id,
    qualify,
    text_or_none,
    timestamp_from_wire,
    to_payload,
    unreadable_dates,
    upper_or_none,
)

SOURCE_SYSTEM = "salesforce"
ID_PREFIX = "sf"
# Custom Contract field naming the contracting (selling) entity when it is not the customer's
# ERP entity, e.g. a deal sold by US01 to a customer invoiced by UK01 (intercompany).
CONTRACT_LEGAL_ENTITY_FIELD = "Q2C_Legal_Entity__c"

CUSTOMER_COLUMNS = column_spec("customers")
CONTRACT_COLUMNS = column_spec("contracts")
CONTRACT_LINE_COLUMNS = column_spec("contract_lines")

Record = Mapping[str, Any]


# A private column (not canonical): dates the source sent that are not ISO 8601 (quarantined as
# invalid_format, never replaced by the contract's).
DATE_COLUMN = "_date_problem"


def _with_dates(frame: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame.insert(len(frame.columns) - 1, DATE_COLUMN,
                 pd.Series([row.get(DATE_COLUMN) for row in rows], dtype=object))
    return frame


def org_currency(user_info: Iterable[Record]) -> str | None:
    """The currency of every record of a single-currency org (getUserInfo's
    ``orgDefaultCurrencyIsoCode`` when ``organizationMultiCurrency`` is false), else None: a
    multi-currency org states ``CurrencyIsoCode`` on each record."""
    for org in user_info:
        if org.get("organizationMultiCurrency") is False:
            return upper_or_none(org.get("orgDefaultCurrencyIsoCode"))
    return None


def _currency(record: Record, org_default: str | None) -> str | None:
    """A record's currency: its ``CurrencyIsoCode``; in a single-currency org (where the field
    does not exist) the org's default currency."""
    if "CurrencyIsoCode" in record:
        return upper_or_none(record.get("CurrencyIsoCode"))
    return org_default


def map_customers(accounts: Iterable[Record], erp_customers: pd.DataFrame,
                  org_default: str | None = None) -> pd.DataFrame:
    """Accounts joined to the ERP customer master -> canonical customers, one row per Account.

    The legal entity (and billing currency, country, tax region) comes from the ERP master keyed by
    ``sf_account_id``; an Account with no master row gets ``legal_entity = ""`` so validation
    quarantines it. ``billing_customer_id`` is ``stripe:<Stripe_Customer_Id__c>``.
    """
    master = _erp_master_by_account(erp_customers)
    rows = []
    for account in accounts:
        account_id = normalize_salesforce_id(account.get("Id"))
        erp = master.get(account_id or "", {})
        customer_id = qualify(ID_PREFIX, account_id)
        rows.append({
            "source_system": SOURCE_SYSTEM,
            "source_id": account_id,
            "correlation_id": customer_id,
            "customer_id": customer_id,
            "name": text_or_none(account.get("Name")),
            "legal_entity": erp.get("legal_entity") or "",
            "currency": upper_or_none(erp.get("currency")) or _currency(account, org_default),
            "parent_customer_id": qualify(
                ID_PREFIX, normalize_salesforce_id(account.get("ParentId"))
            ),
            "country": erp.get("country") or text_or_none(account.get("BillingCountry")),
            "tax_region": erp.get("tax_region"),
            "erp_customer_id": erp.get("erp_customer_id"),
            "billing_customer_id": qualify(
                "stripe",
                text_or_none(account.get("Stripe_Customer_Id__c"))
                or erp.get("stripe_customer_id"),
            ),
            PAYLOAD_COLUMN: to_payload(account),
        })
    return build_frame(rows, CUSTOMER_COLUMNS)


def _erp_master_by_account(erp_customers: pd.DataFrame) -> dict[str, dict[str, str | None]]:
    """ERP customer master keyed by the 18-character Account id (first row wins)."""
    master: dict[str, dict[str, str | None]] = {}
    if erp_customers is None or erp_customers.empty or "sf_account_id" not in erp_customers:
        return master
    for row in erp_customers.astype(object).to_dict("records"):
        account_id = normalize_salesforce_id(row.get("sf_account_id"))
        if account_id and account_id not in master:
            master[account_id] = {key: text_or_none(value) for key, value in row.items()}
    return master


def map_contracts(
    contracts: Iterable[Record],
    subscriptions: Iterable[Record] = (),
    customers: pd.DataFrame | None = None,
    org_default: str | None = None,
    zones: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Contracts -> canonical contracts, one row per contract VERSION.

    Version 1 is the contract as activated: ``signed_date`` is the ``ActivatedDate`` date (else
    ``StartDate``). Each CPQ amendment adds a version (``amendment_versions``): its
    ``effective_date`` is the amendment start (``SBQQ__StartDate__c`` of its rows) and its
    ``signed_date`` the day its rows were contracted (their ``CreatedDate``), which can be before
    the effective date (a future-dated amendment) or after it (a backdated one).
    ``legal_entity`` is the contract's ``Q2C_Legal_Entity__c`` when set (the contracting entity
    of an intercompany deal), else the canonical customer's (``""`` when unknown, for quarantine).
    """
    subscriptions = list(subscriptions)
    contracts = list(contracts)
    versions = amendment_versions(subscriptions, contracts, zones)
    entity_by_customer = _column_by_customer(customers, "legal_entity")
    rows = []
    for contract in contracts:
        contract_sf_id = normalize_salesforce_id(contract.get("Id"))
        contract_id = qualify(ID_PREFIX, contract_sf_id)
        customer_id = qualify(ID_PREFIX, normalize_salesforce_id(contract.get("AccountId")))
        activated = timestamp_from_wire(contract.get("ActivatedDate"))
        first_signed = (
            local_date(activated, (zones or {}).get(contract_sf_id)) if activated is not None
            else timestamp_from_wire(contract.get("StartDate"))
        )
        dated = [(first_signed, None)] + [
            (signed, effective) for (effective, signed), _version in sorted(
                versions.get(contract_sf_id or "", {}).items(), key=lambda kv: kv[1])]
        legal_entity = text_or_none(contract.get(CONTRACT_LEGAL_ENTITY_FIELD)) or (
            entity_by_customer.get(customer_id or "", "")
        )
        payload = to_payload(contract)
        date_problem = unreadable_dates(contract, ("ActivatedDate", "StartDate", "EndDate"))
        term = _inverted_term(contract)
        for version, (signed, effective) in enumerate(dated, start=1):
            rows.append({
                "source_system": SOURCE_SYSTEM,
                "source_id": contract_sf_id,
                "correlation_id": contract_id,
                "contract_id": contract_id,
                "customer_id": customer_id,
                "legal_entity": legal_entity,
                "currency": _currency(contract, org_default),
                "signed_date": signed,
                "effective_date": effective,
                "transaction_price": None,
                "version": version,
                "amends_contract_id": None,
                "status": text_or_none(contract.get("Status")),
                DATE_COLUMN: date_problem,
                FIELD_PROBLEMS: term,
                PAYLOAD_COLUMN: payload,
            })
    return _with_dates(build_frame(rows, CONTRACT_COLUMNS), rows)


def _inverted_term(contract: Record) -> list | None:
    """A contract whose ``EndDate`` is before its ``StartDate`` (both inclusive dates)."""
    start = timestamp_from_wire(contract.get("StartDate"))
    end = timestamp_from_wire(contract.get("EndDate"))
    if start is None or end is None or end >= start:
        return None
    return [("service_period_inverted", "EndDate",
             f"field 'EndDate' {end.date()} is before 'StartDate' {start.date()}: the "
             "contract's term ends before it starts")]


def _is_amendment_row(row: Record, activated: pd.Timestamp | None) -> bool:
    """A delta (it revises a row) or a product an amendment added: a row contracted more than a
    day after its contract was activated."""
    if normalize_salesforce_id(row.get("SBQQ__RevisedSubscription__c")):
        return True
    created = timestamp_from_wire(row.get("CreatedDate"))
    return created is not None and activated is not None and (
        created.normalize() > activated.normalize() + timedelta(days=1))


def local_date(moment: pd.Timestamp | None, zone: str | None) -> pd.Timestamp | None:
    """The calendar day of a UTC instant in the entity's time zone (UTC when None): a contract
    activated 31 December 18:00 in Los Angeles (02:00 UTC on 1 January) is signed on the 31st."""
    if moment is None or pd.isna(moment):
        return None
    if zone:
        moment = moment.tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return moment.normalize()


def contract_zones(contracts: Iterable[Record], customers: pd.DataFrame | None,
                   legal_entities: pd.DataFrame | None) -> dict[str, str]:
    """Salesforce contract id -> the time zone of the entity it books in (its
    ``Q2C_Legal_Entity__c``, else its customer's ERP entity), for entities that have one."""
    if legal_entities is None or "timezone" not in legal_entities.columns:
        return {}
    zone_of = {str(e): str(z) for e, z in zip(legal_entities["legal_entity"],
                                               legal_entities["timezone"], strict=True)
               if isinstance(z, str) and z}
    entity_by_customer = _column_by_customer(customers, "legal_entity")
    out = {}
    for contract in contracts:
        entity = text_or_none(contract.get(CONTRACT_LEGAL_ENTITY_FIELD)) or entity_by_customer.get(
            qualify(ID_PREFIX, normalize_salesforce_id(contract.get("AccountId"))) or "", "")
        contract_id = normalize_salesforce_id(contract.get("Id"))
        if contract_id and entity in zone_of:
            out[contract_id] = zone_of[entity]
    return out


def amendment_versions(subscriptions: Iterable[Record], contracts: Iterable[Record],
                       zones: Mapping[str, str] | None = None,
                       ) -> dict[str, dict[tuple[pd.Timestamp, pd.Timestamp], int]]:
    """Per contract, each amendment (effective day, signing day) -> its version number (2, 3,
    ...), in order of effective then signing day. An amendment is the set of amendment rows with
    the same start date and creation day (the day in the contract entity's time zone,
    ``zones``)."""
    activated = {
        normalize_salesforce_id(c.get("Id")): timestamp_from_wire(c.get("ActivatedDate"))
        for c in contracts}
    found: dict[str, set[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for row in subscriptions:
        contract_id = normalize_salesforce_id(row.get("SBQQ__Contract__c"))
        if not contract_id or not _is_amendment_row(row, activated.get(contract_id)):
            continue
        effective = timestamp_from_wire(row.get("SBQQ__StartDate__c"))
        created = timestamp_from_wire(row.get("CreatedDate"))
        if effective is None:
            continue
        signed = local_date(created, (zones or {}).get(contract_id)) \
            if created is not None else effective
        found.setdefault(contract_id, set()).add((effective, signed))
    return {contract_id: {key: number for number, key in enumerate(sorted(keys), start=2)}
            for contract_id, keys in found.items()}


def _column_by_customer(customers: pd.DataFrame | None, column: str) -> dict[str, str]:
    if customers is None or customers.empty:
        return {}
    unique = customers.drop_duplicates("customer_id")
    return {
        str(key): ("" if value is None or pd.isna(value) else str(value))
        for key, value in zip(unique["customer_id"], unique[column], strict=True)
    }


def map_contract_lines(
    subscriptions: Iterable[Record],
    contracts: Iterable[Record],
    products: pd.DataFrame | None = None,
    opportunities: Iterable[Record] = (),
    opportunity_line_items: Iterable[Record] = (),
    product2: Iterable[Record] = (),
    org_default: str | None = None,
    zones: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """CPQ subscriptions (or, without CPQ, contracted opportunity lines) -> contract lines.

    ``amount`` is the stated price for the row's quantity and term: ``SBQQ__NetPrice__c`` (the unit
    price for the full term) x ``SBQQ__Quantity__c``, in minor units. ``service_end`` is
    ``SBQQ__EndDate__c`` + 1 day (half-open). Delta rows carry ``revises_line_id`` and
    ``effective_date``. ``revenue_pattern`` comes from the ERP catalog (``products``, canonical);
    an unknown product code keeps its code and gets no pattern.
    """
    subscriptions = list(subscriptions)
    contracts_by_id = {
        normalize_salesforce_id(contract.get("Id")): contract for contract in contracts
    }
    pattern_by_code = _pattern_by_code(products)
    code_by_product = {
        normalize_salesforce_id(product.get("Id")): text_or_none(product.get("ProductCode"))
        for product in product2
    }
    if subscriptions:
        versions = amendment_versions(subscriptions, contracts_by_id.values(), zones)
        rows = [
            _subscription_line(row, contracts_by_id, pattern_by_code, code_by_product, versions,
                               org_default, zones)
            for row in subscriptions
        ]
    else:
        rows = _opportunity_lines(
            contracts_by_id, opportunities, opportunity_line_items, pattern_by_code,
            code_by_product, org_default,
        )
    return _with_dates(build_frame(rows, CONTRACT_LINE_COLUMNS), rows)


def _pattern_by_code(products: pd.DataFrame | None) -> dict[str, str]:
    if products is None or products.empty:
        return {}
    unique = products.drop_duplicates("product_code")
    return {
        str(code): str(pattern)
        for code, pattern in zip(unique["product_code"], unique["revenue_pattern"], strict=True)
        if code is not None and pattern is not None and not pd.isna(pattern)
    }


def _subscription_line(
    row: Record,
    contracts_by_id: Mapping[str | None, Record],
    pattern_by_code: Mapping[str, str],
    code_by_product: Mapping[str | None, str | None],
    versions: Mapping[str, Mapping[tuple[pd.Timestamp, pd.Timestamp], int]],
    org_default: str | None = None,
    zones: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    line_sf_id = normalize_salesforce_id(row.get("Id"))
    contract_sf_id = normalize_salesforce_id(row.get("SBQQ__Contract__c"))
    contract = contracts_by_id.get(contract_sf_id, {})
    currency = _currency(row, org_default) or _currency(contract, org_default)
    product_code = text_or_none(row.get("SBQQ__ProductCode__c")) or code_by_product.get(
        normalize_salesforce_id(row.get("SBQQ__Product__c"))
    )
    start = timestamp_from_wire(row.get("SBQQ__StartDate__c")) or timestamp_from_wire(
        contract.get("StartDate")
    )
    end = timestamp_from_wire(row.get("SBQQ__EndDate__c")) or timestamp_from_wire(
        contract.get("EndDate")
    )
    revises = qualify(ID_PREFIX, normalize_salesforce_id(row.get("SBQQ__RevisedSubscription__c")))
    contract_id = qualify(ID_PREFIX, contract_sf_id)
    line_id = qualify(ID_PREFIX, line_sf_id)
    amendment = _is_amendment_row(row, timestamp_from_wire(contract.get("ActivatedDate")))
    version = None
    if amendment and start is not None:
        created = timestamp_from_wire(row.get("CreatedDate"))
        signed = local_date(created, (zones or {}).get(contract_sf_id or "")) \
            if created is not None else start
        version = versions.get(contract_sf_id or "", {}).get((start, signed))
    return {
        "source_system": SOURCE_SYSTEM,
        "source_id": line_sf_id,
        "correlation_id": contract_id or line_id,
        "contract_line_id": line_id,
        "contract_id": contract_id,
        "product_code": product_code,
        "quantity": float_from_wire(row.get("SBQQ__Quantity__c")),
        "amount": _stated_amount(row.get("SBQQ__NetPrice__c"), row.get("SBQQ__Quantity__c"),
                                 currency),
        FIELD_PROBLEMS: _number_problems(row, ("SBQQ__Quantity__c", "SBQQ__NetPrice__c")),
        "ssp_amount": None,
        "service_start": start,
        "service_end": None if end is None else end + timedelta(days=1),
        "revenue_pattern": pattern_by_code.get(product_code or ""),
        "revises_line_id": revises,
        "effective_date": start if amendment else None,
        "allocation_group": None,
        "version": version,
        DATE_COLUMN: unreadable_dates(row, ("SBQQ__StartDate__c", "SBQQ__EndDate__c",
                                            "SBQQ__TerminatedDate__c", "CreatedDate")),
        PAYLOAD_COLUMN: to_payload(row),
    }


def _number_problems(row: Record, fields: tuple[str, ...]) -> list | None:
    """Each of ``fields`` present and a number (words in a price are not read as nothing)."""
    read = FieldProblems(row)
    for name in fields:
        read.required(name)
        read.number(name)
    return read.result()


def _stated_amount(unit_price: Any, quantity: Any, currency: str | None) -> int | None:
    """Unit price x quantity, exact in Decimal, rounded half-up to the currency's minor unit."""
    price = decimal_from_wire(unit_price)
    units = decimal_from_wire(quantity)
    if price is None or units is None or currency is None:
        return None
    return to_minor(price * units, currency)


def _opportunity_lines(
    contracts_by_id: Mapping[str | None, Record],
    opportunities: Iterable[Record],
    opportunity_line_items: Iterable[Record],
    pattern_by_code: Mapping[str, str],
    code_by_product: Mapping[str | None, str | None],
    org_default: str | None = None,
) -> list[dict[str, Any]]:
    """No CPQ: each line item of a contracted opportunity is a contract line.

    An opportunity belongs to a contract through ``Contract.SBQQ__Opportunity__c`` or
    ``Opportunity.ContractId``; line items of opportunities with no contract are not obligations
    yet and produce no row.
    """
    contract_by_opportunity: dict[str, str] = {}
    for contract_sf_id, contract in contracts_by_id.items():
        opportunity_id = normalize_salesforce_id(contract.get("SBQQ__Opportunity__c"))
        if opportunity_id and contract_sf_id:
            contract_by_opportunity[opportunity_id] = contract_sf_id
    for opportunity in opportunities:
        opportunity_id = normalize_salesforce_id(opportunity.get("Id"))
        contract_sf_id = normalize_salesforce_id(opportunity.get("ContractId"))
        if opportunity_id and contract_sf_id and opportunity_id not in contract_by_opportunity:
            contract_by_opportunity[opportunity_id] = contract_sf_id
    rows = []
    for item in opportunity_line_items:
        contract_sf_id = contract_by_opportunity.get(
            normalize_salesforce_id(item.get("OpportunityId")) or ""
        )
        if contract_sf_id is None:
            continue
        contract = contracts_by_id.get(contract_sf_id, {})
        currency = _currency(item, org_default) or _currency(contract, org_default)
        amount = minor_from_wire(item.get("TotalPrice"), currency) if currency else None
        if amount is None:
            amount = _stated_amount(item.get("UnitPrice"), item.get("Quantity"), currency)
        product_code = text_or_none(item.get("ProductCode")) or code_by_product.get(
            normalize_salesforce_id(item.get("Product2Id"))
        )
        end = timestamp_from_wire(contract.get("EndDate"))
        item_id = normalize_salesforce_id(item.get("Id"))
        contract_id = qualify(ID_PREFIX, contract_sf_id)
        rows.append({
            "source_system": SOURCE_SYSTEM,
            "source_id": item_id,
            "correlation_id": contract_id,
            "contract_line_id": qualify(ID_PREFIX, item_id),
            "contract_id": contract_id,
            "product_code": product_code,
            "quantity": float_from_wire(item.get("Quantity")),
            "amount": amount,
            "ssp_amount": None,
            "service_start": timestamp_from_wire(item.get("ServiceDate"))
            or timestamp_from_wire(contract.get("StartDate")),
            "service_end": None if end is None else end + timedelta(days=1),
            "revenue_pattern": pattern_by_code.get(product_code or ""),
            "revises_line_id": None,
            "effective_date": None,
            "allocation_group": None,
            "version": None,
            DATE_COLUMN: unreadable_dates(item, ("ServiceDate",)),
            FIELD_PROBLEMS: _number_problems(item, ("Quantity", "TotalPrice")),
            PAYLOAD_COLUMN: to_payload(item),
        })
    return rows

