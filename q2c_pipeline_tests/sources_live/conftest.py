"""Fixtures for the live-source tests: the Salesforce and Stripe fakes on 127.0.0.1, seeded with
small REST/Stripe-shaped payloads, and clients wired to them with zero backoff."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from q2c_pipeline.sources.salesforce_client import AuthMode, SalesforceConfig
from q2c_pipeline_tests.fakes.salesforce_fake import SalesforceFakeOrg, SalesforceFakeServer

SF_VERSION = "59.0"


def sobject(object_name: str, record_id: str, **fields: object) -> dict:
    """A record as the REST API returns it (attributes first)."""
    url = f"/services/data/v{SF_VERSION}/sobjects/{object_name}/{record_id}"
    return {"attributes": {"type": object_name, "url": url}, "Id": record_id, **fields}


ACCOUNTS = [
    sobject("Account", "001000000000001AAA", Name="Acme", CurrencyIsoCode="USD",
            Stripe_Customer_Id__c="cus_acme", IsDeleted=False,
            SystemModstamp="2026-01-02T09:00:00.000+0000"),
    sobject("Account", "001000000000002AAA", Name="Globex", CurrencyIsoCode="EUR",
            Stripe_Customer_Id__c=None, IsDeleted=False,
            SystemModstamp="2026-01-03T09:00:00.000+0000"),
]


def _contract(number: int, account: str, stamp: str, *, deleted: bool = False, term: int = 12,
              currency: str = "USD") -> dict:
    return sobject(
        "Contract", f"80000000000000{number}AAA", AccountId=account,
        ContractNumber=f"0000010{number}", Status="Activated", StartDate="2026-01-01",
        EndDate="2026-12-31", ContractTerm=term, CurrencyIsoCode=currency,
        SBQQ__RenewalTerm__c=12.0, IsDeleted=deleted, SystemModstamp=stamp,
    )


CONTRACTS = [
    _contract(1, "001000000000001AAA", "2026-01-05T10:00:00.000+0000"),
    _contract(2, "001000000000001AAA", "2026-01-05T10:15:00.000+0000"),
    _contract(3, "001000000000002AAA", "2026-01-05T10:15:00.000+0000", currency="EUR"),
    _contract(4, "001000000000002AAA", "2026-01-06T08:00:00.000+0000", term=24),
    _contract(5, "001000000000001AAA", "2026-01-04T12:00:00.000+0000", deleted=True),
]

SUBSCRIPTIONS = [
    sobject("SBQQ__Subscription__c", "a0D000000000001AAA",
            SBQQ__Contract__c="800000000000001AAA", SBQQ__Quantity__c=10.0,
            SBQQ__NetPrice__c=1200.5, SBQQ__StartDate__c="2026-01-01", CurrencyIsoCode="USD",
            SBQQ__RevisedSubscription__c=None, IsDeleted=False,
            SystemModstamp="2026-01-05T11:00:00.000+0000"),
    sobject("SBQQ__Subscription__c", "a0D000000000002AAA",
            SBQQ__Contract__c="800000000000001AAA", SBQQ__Quantity__c=-2.0,
            SBQQ__NetPrice__c=1200.5, SBQQ__StartDate__c="2026-07-01", CurrencyIsoCode="USD",
            SBQQ__RevisedSubscription__c="a0D000000000001AAA", IsDeleted=False,
            SystemModstamp="2026-06-20T11:00:00.000+0000"),
]

POSTING_FIELDS = {"Contract": {"Q2C_Posting_Status__c": "string",
                               "Q2C_Posting_Message__c": "string"}}


@pytest.fixture(scope="session")
def rsa_key_pair() -> tuple[str, str]:
    """A test RSA key pair (private PEM, public PEM) for the JWT bearer flow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


def seed_records() -> dict[str, list[dict]]:
    return copy.deepcopy(
        {"Account": ACCOUNTS, "Contract": CONTRACTS, "SBQQ__Subscription__c": SUBSCRIPTIONS}
    )


@pytest.fixture
def make_sf_server(rsa_key_pair) -> Iterator:
    """Factory: start a Salesforce fake on 127.0.0.1 for an org built with the given options."""
    servers: list[SalesforceFakeServer] = []

    def make(records: dict | None = None, **options: object) -> SalesforceFakeServer:
        options.setdefault("jwt_public_key", rsa_key_pair[1])
        options.setdefault("extra_fields", POSTING_FIELDS)
        org = SalesforceFakeOrg(seed_records() if records is None else records, **options)
        server = SalesforceFakeServer(org).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sf_server(make_sf_server) -> SalesforceFakeServer:
    """A CPQ, multi-currency org paging 2 records at a time."""
    return make_sf_server(page_size=2)


def password_config(**overrides: object) -> SalesforceConfig:
    """Password + security token login with zero backoff and a 2-row REST batch."""
    settings: dict = {
        "auth_mode": AuthMode.PASSWORD, "username": "etl@acme.example",
        "password": "correct-horse", "security_token": "TOKEN123", "domain": "login",
        "api_version": SF_VERSION, "bulk_threshold": 10_000, "query_batch_size": 200,
        "bulk_poll_wait": 0, "limit_floor_pct": 0.0, "max_retries": 4, "backoff_base": 0.0,
    }
    settings.update(overrides)
    return SalesforceConfig(**settings)
