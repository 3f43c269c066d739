"""Which source objects q2c lands, and under which raw table, id, change-stamp and field list.

Salesforce objects name the fields live extraction selects (``fields``): the mappers in
``salesforce.py`` read these, and the sample company's snapshot files hold exactly these, so a
live extract and a snapshot file of the same org land as the same record versions. Fields of a
managed package (``SBQQ__*``) and ``CurrencyIsoCode`` are dropped by the extractor when the org
lacks them; any other missing field fails the extraction loudly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceObject:
    system: str          # salesforce | stripe | erp
    name: str            # the object's name in its system (Account, invoices, customers.csv)
    raw_table: str       # raw.<raw_table> in DuckDB
    id_fields: tuple[str, ...]
    modstamp_field: str | None
    fields: tuple[str, ...] = ()  # Salesforce SELECT list (Id, IsDeleted, SystemModstamp added)

    @property
    def asset_name(self) -> str:
        return self.raw_table


_STAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")

SALESFORCE_OBJECTS = (
    SourceObject(
        "salesforce", "Account", "salesforce_accounts", ("Id",), "SystemModstamp",
        ("Name", "Type", "Industry", "OwnerId", "ParentId", "BillingCity", "BillingState",
         "BillingCountry", "CurrencyIsoCode", "Stripe_Customer_Id__c", *_STAMPS),
    ),
    SourceObject(
        "salesforce", "Product2", "salesforce_products", ("Id",), "SystemModstamp",
        ("Name", "ProductCode", "Description", "Family", "IsActive", "QuantityUnitOfMeasure",
         "CurrencyIsoCode", "SBQQ__BillingFrequency__c", "SBQQ__BillingType__c",
         "SBQQ__ChargeType__c", "SBQQ__SubscriptionPricing__c", "SBQQ__SubscriptionTerm__c",
         "SBQQ__SubscriptionType__c", *_STAMPS),
    ),
    SourceObject(
        "salesforce", "Opportunity", "salesforce_opportunities", ("Id",), "SystemModstamp",
        ("Name", "AccountId", "Amount", "CloseDate", "ContractId", "CurrencyIsoCode",
         "ForecastCategoryName", "HasOpportunityLineItem", "IsClosed", "IsWon", "OwnerId",
         "Pricebook2Id", "Probability", "StageName", "Type", "SBQQ__AmendedContract__c",
         "SBQQ__Contracted__c", *_STAMPS),
    ),
    SourceObject(
        "salesforce", "OpportunityLineItem", "salesforce_opportunity_line_items", ("Id",),
        "SystemModstamp",
        ("Name", "OpportunityId", "PricebookEntryId", "Product2Id", "ProductCode", "Description",
         "Quantity", "UnitPrice", "ListPrice", "TotalPrice", "Discount", "ServiceDate",
         "CurrencyIsoCode", "SBQQ__QuoteLine__c", *_STAMPS),
    ),
    SourceObject(
        "salesforce", "Contract", "salesforce_contracts", ("Id",), "SystemModstamp",
        ("AccountId", "ContractNumber", "Status", "StatusCode", "StartDate", "EndDate",
         "ContractTerm", "ActivatedDate", "Pricebook2Id", "CurrencyIsoCode",
         "SBQQ__AmendmentStartDate__c", "SBQQ__Evergreen__c", "SBQQ__Opportunity__c",
         "SBQQ__Quote__c", "SBQQ__RenewalForecast__c", "SBQQ__RenewalQuoted__c",
         "Q2C_Legal_Entity__c", *_STAMPS),
    ),
    SourceObject(
        "salesforce", "SBQQ__Subscription__c", "salesforce_subscriptions", ("Id",),
        "SystemModstamp",
        ("Name", "SBQQ__Account__c", "SBQQ__Contract__c", "SBQQ__Product__c",
         "SBQQ__ProductCode__c", "SBQQ__Quantity__c", "SBQQ__ListPrice__c",
         "SBQQ__RegularPrice__c", "SBQQ__CustomerPrice__c", "SBQQ__NetPrice__c",
         "SBQQ__ProrateMultiplier__c", "SBQQ__StartDate__c", "SBQQ__EndDate__c",
         "SBQQ__TerminatedDate__c", "SBQQ__RevisedSubscription__c", "SBQQ__BillingFrequency__c",
         "SBQQ__BillingType__c", "SBQQ__ChargeType__c", "SBQQ__SubscriptionType__c",
         "CurrencyIsoCode", *_STAMPS),
    ),
)

# The org itself, as SOAP getUserInfo states it (SalesforceExtractor.user_info): whether it is
# multi-currency, its default currency (the currency of every record of a single-currency org,
# whose objects have no CurrencyIsoCode) and the time zone. One record, keyed by the org id.
SALESFORCE_ORG = SourceObject("salesforce", "UserInfo", "salesforce_user_info",
                              ("organizationId",), None)
# Everything landed from Salesforce: the objects queried with SOQL, and the org.
SALESFORCE_SOURCES = (*SALESFORCE_OBJECTS, SALESFORCE_ORG)

STRIPE_RESOURCES = (
    *(SourceObject("stripe", name, f"stripe_{name}", ("id",), "created")
      for name in ("customers", "products", "prices", "subscriptions", "invoices",
                   "credit_notes", "invoice_payments", "refunds")),
    # Stripe's own count of metered usage: the meters, and per customer and UTC day what each
    # meter aggregated (a summary is re-read whole until its day is invoiced; the newest wins)
    SourceObject("stripe", "billing_meters", "stripe_billing_meters", ("id",), "updated"),
    SourceObject("stripe", "billing_meter_event_summaries",
                 "stripe_billing_meter_event_summaries", ("id",), "start_time"),
)

ERP_TABLES = (
    SourceObject("erp", "legal_entities", "erp_legal_entities", ("legal_entity",), None),
    SourceObject(
        "erp", "chart_of_accounts", "erp_chart_of_accounts", ("legal_entity", "account"), None
    ),
    SourceObject(
        "erp", "accounting_periods", "erp_accounting_periods", ("legal_entity", "period"), None
    ),
    SourceObject("erp", "products", "erp_products", ("product_code",), None),
    SourceObject("erp", "tax_codes", "erp_tax_codes", ("tax_code",), None),
    SourceObject(
        "erp", "fx_rates", "erp_fx_rates", ("rate_date", "from_currency", "to_currency"), None
    ),
    SourceObject("erp", "customers", "erp_customers", ("erp_customer_id",), None),
)
