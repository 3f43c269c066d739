"""Salesforce REST records -> canonical customers, contracts and contract lines."""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pytest

from q2c_pipeline.schemas import ContractLines, Contracts, Customers
from q2c_pipeline.sources.salesforce import map_contract_lines, map_contracts, map_customers
from q2c_pipeline.sources.wire import PAYLOAD_COLUMN, checksum_salesforce_id

ACCOUNT = "001Hp00000A1b2CIAR"
CONTRACT = "800Hp00000C0n7RIAR"
ORIGINAL = "a0XHp00000S0b1AIAR"
DELTA = "a0XHp00000S0b2BIAR"


def _attributes(object_name: str, record_id: str) -> dict:
    return {"type": object_name, "url": f"/services/data/v59.0/sobjects/{object_name}/{record_id}"}


def _account(account_id: str = ACCOUNT, **fields) -> dict:
    return {"attributes": _attributes("Account", account_id), "Id": account_id,
            "Name": "Acme", "CurrencyIsoCode": "USD", "BillingCountry": "US", "ParentId": None,
            "Stripe_Customer_Id__c": "cus_A1", "IsDeleted": False, **fields}


def _contract(**fields) -> dict:
    return {"attributes": _attributes("Contract", CONTRACT), "Id": CONTRACT,
            "AccountId": ACCOUNT, "Status": "Activated", "StartDate": "2026-01-01",
            "EndDate": "2026-12-31", "ContractTerm": 12,
            "ActivatedDate": "2025-12-22T15:30:00.000+0000", "CurrencyIsoCode": "USD",
            "SBQQ__Opportunity__c": None, **fields}


def _subscription(row_id: str, **fields) -> dict:
    return {"attributes": _attributes("SBQQ__Subscription__c", row_id), "Id": row_id,
            "SBQQ__Contract__c": CONTRACT, "SBQQ__Account__c": ACCOUNT,
            "SBQQ__ProductCode__c": "PLAT-SEAT", "SBQQ__Quantity__c": 10.0,
            "SBQQ__StartDate__c": "2026-01-01", "SBQQ__EndDate__c": "2026-12-31",
            "SBQQ__NetPrice__c": 1200.5, "SBQQ__RevisedSubscription__c": None,
            "SBQQ__TerminatedDate__c": None, "CurrencyIsoCode": "USD", **fields}


ERP_CUSTOMERS = pd.DataFrame([{
    "erp_customer_id": "C-1", "sf_account_id": ACCOUNT, "stripe_customer_id": "cus_A1",
    "legal_entity": "US01", "currency": "USD", "country": "US", "tax_region": "US-CA",
}])
PRODUCTS = pd.DataFrame({"product_code": ["PLAT-SEAT"], "revenue_pattern": ["ratable"]})


def _validate(model, frame: pd.DataFrame) -> pd.DataFrame:
    return model.validate(frame.drop(columns=[c for c in frame.columns if c.startswith("_")]))


@pytest.mark.parametrize(("id15", "id18"), [
    ("001D000000IRFma", "001D000000IRFmaIAH"),  # Salesforce docs example
    ("001D000000Iomaz", "001D000000IomazIAB"),
])
def test_checksum_turns_15_character_ids_into_documented_18_character_ids(id15, id18):
    assert checksum_salesforce_id(id15) == id18
    assert checksum_salesforce_id(id18) == id18


def test_customer_takes_legal_entity_and_billing_id_from_the_erp_master():
    customers = map_customers([_account()], ERP_CUSTOMERS)

    row = customers.iloc[0]
    assert row["customer_id"] == f"sf:{ACCOUNT}"
    assert row["legal_entity"] == "US01"
    assert row["tax_region"] == "US-CA"
    assert row["erp_customer_id"] == "C-1"
    assert row["billing_customer_id"] == "stripe:cus_A1"
    assert row["correlation_id"] == f"sf:{ACCOUNT}"
    assert row[PAYLOAD_COLUMN].startswith('{"BillingCountry":"US"')  # compact, keys sorted
    _validate(Customers, customers)


def test_erp_master_holding_a_15_character_account_id_still_matches():
    # The ERP export stores the case-sensitive 15-character form; REST returns 18.
    master = ERP_CUSTOMERS.assign(sf_account_id=ACCOUNT[:15])
    assert map_customers([_account()], master).iloc[0]["legal_entity"] == "US01"


def test_account_without_erp_master_row_keeps_an_empty_legal_entity_and_fails_validation():
    orphan = "001Hp00000Z9y8XIAR"
    customers = map_customers([_account(), _account(orphan, Name="Orphan")], ERP_CUSTOMERS)

    assert list(customers["legal_entity"]) == ["US01", ""]
    assert customers.iloc[1]["currency"] == "USD"  # falls back to the Account currency
    with pytest.raises(pandera.errors.SchemaError, match="legal_entity"):
        _validate(Customers, customers)


def test_contract_line_amount_reads_json_floats_exactly():
    # 1200.5 x 10 = 12005.00 -> 1200500; 1.005 as a binary float is 1.00499..., via str it is
    # 1.005 and rounds half-up to 101 cents.
    lines = map_contract_lines(
        [_subscription(ORIGINAL),
         _subscription(DELTA, SBQQ__NetPrice__c=1.005, SBQQ__Quantity__c=1.0)],
        [_contract()], PRODUCTS,
    )
    assert list(lines["amount"]) == [1200500, 101]


def test_contract_line_service_end_is_end_date_plus_one_day():
    line = map_contract_lines([_subscription(ORIGINAL)], [_contract()], PRODUCTS).iloc[0]

    assert line["service_start"] == pd.Timestamp("2026-01-01")
    assert line["service_end"] == pd.Timestamp("2027-01-01")
    assert line["revenue_pattern"] == "ratable"
    assert line["contract_line_id"] == f"sf:{ORIGINAL}"
    assert line["correlation_id"] == f"sf:{CONTRACT}"


def test_amendment_delta_row_revises_its_line_and_adds_a_contract_version():
    # +5 seats from 2026-03-16 at the prorated unit price 951.61: 5 x 951.61 = 4758.05.
    delta = _subscription(DELTA, SBQQ__Quantity__c=5.0, SBQQ__NetPrice__c=951.61,
                          SBQQ__StartDate__c="2026-03-16",
                          SBQQ__RevisedSubscription__c=ORIGINAL)
    subscriptions = [_subscription(ORIGINAL), delta]

    lines = map_contract_lines(subscriptions, [_contract()], PRODUCTS)
    contracts = map_contracts([_contract()], subscriptions)

    amended = lines.iloc[1]
    assert amended["amount"] == 475805
    assert amended["revises_line_id"] == f"sf:{ORIGINAL}"
    assert amended["effective_date"] == pd.Timestamp("2026-03-16")
    assert amended["service_end"] == pd.Timestamp("2027-01-01")
    assert pd.isna(lines.iloc[0]["effective_date"])
    assert list(contracts["version"]) == [1, 2]
    assert list(contracts["signed_date"]) == [pd.Timestamp("2025-12-22"),
                                              pd.Timestamp("2026-03-16")]
    _validate(ContractLines, lines)


def test_cancellation_is_a_negative_delta_that_still_validates():
    cancel = _subscription(DELTA, SBQQ__Quantity__c=-10.0, SBQQ__NetPrice__c=720.0,
                           SBQQ__StartDate__c="2026-05-01", SBQQ__TerminatedDate__c="2026-05-01",
                           SBQQ__RevisedSubscription__c=ORIGINAL)
    lines = map_contract_lines([_subscription(ORIGINAL), cancel], [_contract()], PRODUCTS)

    assert lines.iloc[1]["amount"] == -720000
    _validate(ContractLines, lines)


def test_negative_quantity_without_revised_subscription_comes_through_and_fails_validation():
    lines = map_contract_lines([_subscription(ORIGINAL, SBQQ__Quantity__c=-2.0)], [_contract()],
                               PRODUCTS)

    assert lines.iloc[0]["quantity"] == -2.0
    with pytest.raises(pandera.errors.SchemaError, match="quantity_negative_only_on_amendments"):
        _validate(ContractLines, lines)


def test_unknown_product_code_keeps_its_code_and_has_no_revenue_pattern():
    lines = map_contract_lines([_subscription(ORIGINAL, SBQQ__ProductCode__c="LEGACY-SUPPORT")],
                               [_contract()], PRODUCTS)

    assert lines.iloc[0]["product_code"] == "LEGACY-SUPPORT"
    assert lines.iloc[0]["revenue_pattern"] is None


def test_subscription_without_net_price_maps_to_a_null_amount_that_validation_rejects():
    lines = map_contract_lines([_subscription(ORIGINAL, SBQQ__NetPrice__c=None)], [_contract()],
                               PRODUCTS)

    assert len(lines) == 1 and pd.isna(lines.iloc[0]["amount"])
    # A null in a required int column fails dtype coercion (raised as SchemaErrors).
    with pytest.raises((pandera.errors.SchemaError, pandera.errors.SchemaErrors), match="amount"):
        _validate(ContractLines, lines)


def test_product_code_falls_back_to_product2_when_not_denormalized():
    product_id = "01tHp00000P0d1AIAR"
    row = _subscription(ORIGINAL, SBQQ__ProductCode__c=None, SBQQ__Product__c=product_id)
    lines = map_contract_lines([row], [_contract()], PRODUCTS,
                               product2=[{"Id": product_id, "ProductCode": "PLAT-SEAT"}])

    assert lines.iloc[0]["product_code"] == "PLAT-SEAT"


def test_org_without_cpq_takes_lines_from_the_contracted_opportunity():
    opportunity = "006Hp00000O0p1AIAR"
    other = "006Hp00000O0p2BIAR"
    items = [
        {"Id": "00kHp00000L1n1AIAR", "OpportunityId": opportunity, "ProductCode": "PLAT-SEAT",
         "Quantity": 3.0, "UnitPrice": 1200.5, "TotalPrice": 3601.5, "ServiceDate": None,
         "CurrencyIsoCode": "USD"},
        {"Id": "00kHp00000L1n2BIAR", "OpportunityId": other, "ProductCode": "PLAT-SEAT",
         "Quantity": 1.0, "UnitPrice": 10.0, "TotalPrice": 10.0, "CurrencyIsoCode": "USD"},
    ]
    opportunities = [{"Id": opportunity, "ContractId": CONTRACT}, {"Id": other, "ContractId": None}]

    lines = map_contract_lines([], [_contract()], PRODUCTS, opportunities, items)

    assert list(lines["contract_line_id"]) == ["sf:00kHp00000L1n1AIAR"]  # other is uncontracted
    line = lines.iloc[0]
    assert line["amount"] == 360150
    assert line["contract_id"] == f"sf:{CONTRACT}"
    assert line["service_start"] == pd.Timestamp("2026-01-01")
    assert line["service_end"] == pd.Timestamp("2027-01-01")
    _validate(ContractLines, lines)


def test_contract_takes_legal_entity_from_its_customer_and_validates():
    customers = map_customers([_account()], ERP_CUSTOMERS)
    contracts = map_contracts([_contract()], [], customers)

    row = contracts.iloc[0]
    assert (row["contract_id"], row["customer_id"], row["legal_entity"], row["currency"]) == (
        f"sf:{CONTRACT}", f"sf:{ACCOUNT}", "US01", "USD")
    assert row["version"] == 1
    _validate(Contracts, contracts)


def test_contract_legal_entity_field_names_the_contracting_entity_of_every_version():
    # The customer is UK01's (ERP master); the deal was sold by US01, amended once.
    customers = map_customers([_account()], ERP_CUSTOMERS.assign(legal_entity="UK01"))
    delta = _subscription(DELTA, SBQQ__StartDate__c="2026-03-16",
                          SBQQ__RevisedSubscription__c=ORIGINAL)
    contracts = map_contracts([_contract(Q2C_Legal_Entity__c=" US01 ")],
                              [_subscription(ORIGINAL), delta], customers)

    assert list(contracts["legal_entity"]) == ["US01", "US01"]
    assert customers.iloc[0]["legal_entity"] == "UK01"
    _validate(Contracts, contracts)


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_contract_with_a_blank_legal_entity_field_keeps_its_customers_entity(blank):
    customers = map_customers([_account()], ERP_CUSTOMERS)
    contracts = map_contracts([_contract(Q2C_Legal_Entity__c=blank)], [], customers)

    assert contracts.iloc[0]["legal_entity"] == "US01"


def test_empty_inputs_give_empty_frames_with_the_canonical_columns():
    assert list(map_contract_lines([], [], PRODUCTS).columns)[-1] == PAYLOAD_COLUMN
    assert map_contracts([], []).empty
    _validate(ContractLines, map_contract_lines([], [], PRODUCTS))


def test_a_date_in_another_format_is_held_never_replaced_by_the_contracts():
    # why: an end date of 03/31/2026 fell back to the contract's end and spread a 3-month
    # services line over 12 months
    from q2c_pipeline.sources.salesforce import map_contract_lines, map_contracts

    contract = {"Id": "800Hp00000DATESIAA", "AccountId": "001Hp00000DATESIAA",
                "StartDate": "2026-01-01", "EndDate": "2026-12-31", "Status": "Activated",
                "ActivatedDate": "yesterday at noon", "CurrencyIsoCode": "USD"}
    line = {"Id": "a0XHp00000DATESIAA", "SBQQ__Contract__c": contract["Id"],
            "SBQQ__ProductCode__c": "PS-DAY", "SBQQ__Quantity__c": 10.0,
            "SBQQ__NetPrice__c": 1600.0, "SBQQ__StartDate__c": "2026-01-01",
            "SBQQ__EndDate__c": "03/31/2026", "CurrencyIsoCode": "USD"}
    contracts = map_contracts([contract])
    lines = map_contract_lines([line], [contract])
    assert "'ActivatedDate' value 'yesterday at noon' is not an ISO 8601" in \
        contracts["_date_problem"].iloc[0]
    assert "'SBQQ__EndDate__c' value '03/31/2026'" in lines["_date_problem"].iloc[0]
