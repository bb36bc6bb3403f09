"""The sandbox's catalogue: which objects and fields each emulated system has.

This is the contract between the data generator (which fills the tables),
the API emulators (which describe, query and update them) and clghub's
default mappings (which read them). Field names and types follow what a
real Salesforce org and HubSpot portal of a B2B SaaS company carry.

Storage: one SQLite table per object. Salesforce tables are ``sf_<Object>``
with one column per field, named exactly as the field's API name.
HubSpot tables are ``hs_<object>`` with ``id`` (INTEGER PRIMARY KEY),
``created_at``, ``updated_at``, ``archived`` (0/1), ``archived_at`` and one
column per property, named exactly as the property. Associations live in
``hs_association``; owners in ``hs_owners``.

Timestamps are stored as UTC text ``YYYY-MM-DDTHH:MM:SS.fffZ`` (sorts
correctly); dates as ``YYYY-MM-DD``; booleans as 0/1; numbers as REAL or
INTEGER. Each API formats them its own way on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "HS_OBJECTS",
    "SF_OBJECTS",
    "USAGE_METRICS",
    "HsProperty",
    "SfField",
    "hs_property",
    "sf_field",
]


@dataclass(frozen=True)
class SfField:
    name: str
    type: str
    """id, string, textarea, picklist, reference, currency, double, percent,
    int, boolean, date, datetime, email, url, phone."""
    label: str
    custom: bool = False
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    filterable: bool = True
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    length: int = 0
    picklist: tuple[str, ...] = ()


def _sys(
    name: str,
    type_: str,
    label: str,
    *,
    nillable: bool = True,
    length: int = 0,
    reference_to: tuple[str, ...] = (),
) -> SfField:
    """A system field: read-only."""
    return SfField(
        name,
        type_,
        label,
        updateable=False,
        createable=False,
        nillable=nillable,
        length=length,
        reference_to=reference_to,
    )


_AUDIT = (
    _sys("IsDeleted", "boolean", "Deleted", nillable=False),
    _sys("CreatedDate", "datetime", "Created Date", nillable=False),
    _sys("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
    _sys("SystemModstamp", "datetime", "System Modstamp", nillable=False),
)

# The fields clghub writes back: a real org creates them once (clghub check
# prints the list); the sandbox org ships with them.
VALUE_FIELDS_SF = (
    SfField("Value_Score__c", "double", "Value Score", custom=True),
    SfField(
        "Value_Band__c", "picklist", "Value Band", custom=True, picklist=("green", "yellow", "red")
    ),
    SfField("Value_Trend_30d__c", "double", "Value Trend (30 days)", custom=True),
    SfField("Value_Trend_90d__c", "double", "Value Trend (90 days)", custom=True),
    SfField("Value_Drivers__c", "textarea", "Value Drivers", custom=True, length=32768),
    SfField("CLV__c", "currency", "Customer Lifetime Value", custom=True),
    SfField("CLV_Growth__c", "percent", "CLV Growth", custom=True),
    SfField("Time_To_First_Value_Days__c", "double", "Time to First Value (days)", custom=True),
    SfField("Value_Computed_At__c", "datetime", "Value Computed At", custom=True),
)

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")

SF_OBJECTS: dict[str, tuple[SfField, ...]] = {
    "User": (
        _sys("Id", "id", "User ID", nillable=False),
        SfField("Username", "string", "Username", length=80),
        SfField("FirstName", "string", "First Name", length=40),
        SfField("LastName", "string", "Last Name", length=80),
        _sys("Name", "string", "Full Name", length=121),
        SfField("Email", "email", "Email", length=128),
        SfField("Title", "string", "Title", length=80),
        SfField("Department", "string", "Department", length=80),
        SfField("IsActive", "boolean", "Active", nillable=False),
        *_AUDIT[1:],  # Users are deactivated, never deleted
    ),
    "Account": (
        _sys("Id", "id", "Account ID", nillable=False),
        SfField("Name", "string", "Account Name", nillable=False, length=255),
        SfField(
            "Type",
            "picklist",
            "Account Type",
            picklist=("Prospect", "Customer", "Former Customer", "Partner"),
        ),
        SfField(
            "Industry",
            "picklist",
            "Industry",
            picklist=(
                "Software",
                "Financial Services",
                "Healthcare",
                "Retail",
                "Manufacturing",
                "Education",
                "Media",
            ),
        ),
        SfField("Website", "url", "Website", length=255),
        SfField("BillingCountry", "string", "Billing Country", length=80),
        SfField("NumberOfEmployees", "int", "Employees"),
        SfField("AnnualRevenue", "currency", "Annual Revenue"),
        SfField(
            "AccountSource",
            "picklist",
            "Account Source",
            picklist=("Web", "Partner", "Event", "Outbound", "Referral", "Advertisement"),
        ),
        SfField("CurrencyIsoCode", "picklist", "Account Currency", picklist=CURRENCIES),
        SfField("OwnerId", "reference", "Owner ID", reference_to=("User",), nillable=False),
        SfField(
            "CSM__c", "reference", "Customer Success Manager", custom=True, reference_to=("User",)
        ),
        SfField(
            "Region__c", "picklist", "Region", custom=True, picklist=("NA", "EMEA", "APAC", "LATAM")
        ),
        SfField(
            "Segment__c",
            "picklist",
            "Segment",
            custom=True,
            picklist=("SMB", "Mid-Market", "Enterprise"),
        ),
        SfField(
            "Product_Account_Key__c",
            "string",
            "Product Account Key",
            custom=True,
            external_id=True,
            length=64,
        ),
        SfField("Seats__c", "double", "Contracted Seats", custom=True),
        SfField("Outcome_Target__c", "double", "Outcome Target", custom=True),
        *VALUE_FIELDS_SF,
        *_AUDIT,
    ),
    "Contact": (
        _sys("Id", "id", "Contact ID", nillable=False),
        SfField("AccountId", "reference", "Account ID", reference_to=("Account",)),
        SfField("FirstName", "string", "First Name", length=40),
        SfField("LastName", "string", "Last Name", nillable=False, length=80),
        _sys("Name", "string", "Full Name", length=121),
        SfField("Email", "email", "Email", length=80),
        SfField("Title", "string", "Title", length=128),
        SfField(
            "Buying_Role__c",
            "picklist",
            "Buying Role",
            custom=True,
            picklist=("Economic Buyer", "Champion", "User", "Other"),
        ),
        *_AUDIT,
    ),
    "Opportunity": (
        _sys("Id", "id", "Opportunity ID", nillable=False),
        SfField("AccountId", "reference", "Account ID", reference_to=("Account",)),
        SfField("Name", "string", "Name", nillable=False, length=120),
        SfField(
            "Type",
            "picklist",
            "Opportunity Type",
            picklist=("New Business", "Renewal", "Upsell", "Downsell"),
        ),
        SfField(
            "StageName",
            "picklist",
            "Stage",
            nillable=False,
            picklist=(
                "Prospecting",
                "Qualification",
                "Proposal",
                "Negotiation",
                "Closed Won",
                "Closed Lost",
            ),
        ),
        _sys("IsClosed", "boolean", "Closed", nillable=False),
        _sys("IsWon", "boolean", "Won", nillable=False),
        SfField("Amount", "currency", "Amount"),
        SfField("CurrencyIsoCode", "picklist", "Opportunity Currency", picklist=CURRENCIES),
        SfField("CloseDate", "date", "Close Date", nillable=False),
        SfField(
            "LeadSource",
            "picklist",
            "Lead Source",
            picklist=("Web", "Partner", "Event", "Outbound", "Referral", "Advertisement"),
        ),
        SfField("OwnerId", "reference", "Owner ID", reference_to=("User",), nillable=False),
        SfField("Contract_Start_Date__c", "date", "Contract Start Date", custom=True),
        SfField("Contract_End_Date__c", "date", "Contract End Date", custom=True),
        SfField("ARR__c", "currency", "ARR", custom=True),
        *_AUDIT,
    ),
    "Case": (
        _sys("Id", "id", "Case ID", nillable=False),
        SfField("AccountId", "reference", "Account ID", reference_to=("Account",)),
        SfField("ContactId", "reference", "Contact ID", reference_to=("Contact",)),
        SfField("Subject", "string", "Subject", length=255),
        SfField("Priority", "picklist", "Priority", picklist=("Low", "Medium", "High", "Critical")),
        SfField("Status", "picklist", "Status", picklist=("New", "Working", "Escalated", "Closed")),
        SfField("Origin", "picklist", "Case Origin", picklist=("Email", "Phone", "Web", "Chat")),
        _sys("IsClosed", "boolean", "Closed", nillable=False),
        _sys("ClosedDate", "datetime", "Closed Date"),
        SfField("CSAT__c", "double", "CSAT (1-5)", custom=True),
        *_AUDIT,
    ),
    "Task": (
        _sys("Id", "id", "Activity ID", nillable=False),
        SfField("WhatId", "reference", "Related To ID", reference_to=("Account", "Opportunity")),
        SfField("WhoId", "reference", "Name ID", reference_to=("Contact",)),
        _sys("AccountId", "reference", "Account ID", reference_to=("Account",)),
        SfField("Subject", "string", "Subject", length=255),
        SfField("Type", "picklist", "Type", picklist=("Call", "Email", "Meeting", "Other")),
        SfField(
            "Status",
            "picklist",
            "Status",
            nillable=False,
            picklist=("Not Started", "In Progress", "Completed"),
        ),
        SfField(
            "Priority", "picklist", "Priority", nillable=False, picklist=("High", "Normal", "Low")
        ),
        SfField("ActivityDate", "date", "Due Date Only"),
        SfField("Description", "textarea", "Description", length=32000),
        SfField("OwnerId", "reference", "Assigned To ID", reference_to=("User",), nillable=False),
        *_AUDIT,
    ),
}

# Salesforce Id prefixes (the first three characters say the object).
SF_ID_PREFIX: dict[str, str] = {
    "User": "005",
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Case": "500",
    "Task": "00T",
}


@dataclass(frozen=True)
class HsProperty:
    name: str
    type: str
    """string, number, date, datetime, enumeration, bool."""
    field_type: str
    """text, textarea, number, date, select, radio, booleancheckbox, calculation_equation."""
    label: str
    group: str
    options: tuple[str, ...] = ()
    custom: bool = False
    read_only: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _hs(
    name: str,
    type_: str,
    field_type: str,
    label: str,
    group: str,
    *options: str,
    custom: bool = False,
    read_only: bool = False,
) -> HsProperty:
    return HsProperty(
        name, type_, field_type, label, group, tuple(options), custom=custom, read_only=read_only
    )


_HS_COMMON = (
    _hs("hs_object_id", "number", "number", "Record ID", "objectinformation", read_only=True),
    _hs("createdate", "datetime", "date", "Create Date", "objectinformation", read_only=True),
    _hs(
        "hs_lastmodifieddate",
        "datetime",
        "date",
        "Last Modified Date",
        "objectinformation",
        read_only=True,
    ),
    _hs("hubspot_owner_id", "enumeration", "select", "Owner", "objectinformation"),
)

ANALYTICS_SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
)

HS_OBJECTS: dict[str, tuple[HsProperty, ...]] = {
    "companies": (
        _hs("name", "string", "text", "Company name", "companyinformation"),
        _hs("domain", "string", "text", "Company Domain Name", "companyinformation"),
        _hs(
            "industry",
            "enumeration",
            "select",
            "Industry",
            "companyinformation",
            "COMPUTER_SOFTWARE",
            "FINANCIAL_SERVICES",
            "HOSPITAL_HEALTH_CARE",
            "RETAIL",
            "MACHINERY",
            "EDUCATION_MANAGEMENT",
            "MEDIA_PRODUCTION",
        ),
        _hs("country", "string", "text", "Country/Region", "companyinformation"),
        _hs("numberofemployees", "number", "number", "Number of Employees", "companyinformation"),
        _hs("annualrevenue", "number", "number", "Annual Revenue", "companyinformation"),
        _hs(
            "lifecyclestage",
            "enumeration",
            "radio",
            "Lifecycle Stage",
            "companyinformation",
            "lead",
            "opportunity",
            "customer",
            "other",
        ),
        _hs(
            "hs_analytics_source",
            "enumeration",
            "select",
            "Original Source Type",
            "analyticsinformation",
            *ANALYTICS_SOURCES,
            read_only=True,
        ),
        _hs(
            "product_account_key",
            "string",
            "text",
            "Product Account Key",
            "companyinformation",
            custom=True,
        ),
        _hs(
            "segment",
            "enumeration",
            "select",
            "Segment",
            "companyinformation",
            "smb",
            "mid_market",
            "enterprise",
            custom=True,
        ),
        _hs(
            "region",
            "enumeration",
            "select",
            "Region",
            "companyinformation",
            "NA",
            "EMEA",
            "APAC",
            "LATAM",
            custom=True,
        ),
        _hs("seats", "number", "number", "Contracted Seats", "companyinformation", custom=True),
        _hs(
            "outcome_target",
            "number",
            "number",
            "Outcome Target",
            "companyinformation",
            custom=True,
        ),
        _hs(
            "csm_owner_id",
            "enumeration",
            "select",
            "Customer Success Manager",
            "companyinformation",
            custom=True,
        ),
        *_HS_COMMON,
    ),
    "contacts": (
        _hs("firstname", "string", "text", "First Name", "contactinformation"),
        _hs("lastname", "string", "text", "Last Name", "contactinformation"),
        _hs("email", "string", "text", "Email", "contactinformation"),
        _hs("jobtitle", "string", "text", "Job Title", "contactinformation"),
        _hs(
            "hs_buying_role",
            "enumeration",
            "checkbox",
            "Buying Role",
            "contactinformation",
            "BLOCKER",
            "BUDGET_HOLDER",
            "CHAMPION",
            "DECISION_MAKER",
            "END_USER",
            "EXECUTIVE_SPONSOR",
            "INFLUENCER",
            "LEGAL_AND_COMPLIANCE",
            "OTHER",
        ),
        _hs(
            "associatedcompanyid",
            "number",
            "number",
            "Primary Associated Company ID",
            "contactinformation",
            read_only=True,
        ),
        _hs("hs_object_id", "number", "number", "Record ID", "contactinformation", read_only=True),
        _hs("createdate", "datetime", "date", "Create Date", "contactinformation", read_only=True),
        # Contacts keep their cursor in lastmodifieddate, not hs_lastmodifieddate.
        _hs(
            "lastmodifieddate",
            "datetime",
            "date",
            "Last Modified Date",
            "contactinformation",
            read_only=True,
        ),
        _hs("hubspot_owner_id", "enumeration", "select", "Contact owner", "contactinformation"),
    ),
    "deals": (
        _hs("dealname", "string", "text", "Deal Name", "dealinformation"),
        _hs("amount", "number", "number", "Amount", "dealinformation"),
        _hs(
            "deal_currency_code",
            "enumeration",
            "select",
            "Currency",
            "dealinformation",
            *CURRENCIES,
        ),
        _hs(
            "dealstage",
            "enumeration",
            "radio",
            "Deal Stage",
            "dealinformation",
            "appointmentscheduled",
            "qualifiedtobuy",
            "presentationscheduled",
            "decisionmakerboughtin",
            "contractsent",
            "closedwon",
            "closedlost",
        ),
        _hs("pipeline", "enumeration", "select", "Pipeline", "dealinformation", "default"),
        _hs("closedate", "datetime", "date", "Close Date", "dealinformation"),
        # Portals add the motions they track to the standard dealtype options.
        _hs(
            "dealtype",
            "enumeration",
            "radio",
            "Deal Type",
            "dealinformation",
            "newbusiness",
            "existingbusiness",
            "renewal",
            "expansion",
            "contraction",
        ),
        _hs(
            "hs_is_closed_won",
            "bool",
            "booleancheckbox",
            "Is Closed Won",
            "dealinformation",
            "true",
            "false",
            read_only=True,
        ),
        _hs(
            "hs_is_closed",
            "bool",
            "booleancheckbox",
            "Is Deal Closed?",
            "dealinformation",
            "true",
            "false",
            read_only=True,
        ),
        _hs(
            "hs_analytics_source",
            "enumeration",
            "select",
            "Original Source Type",
            "analyticsinformation",
            *ANALYTICS_SOURCES,
            read_only=True,
        ),
        _hs(
            "contract_start_date",
            "date",
            "date",
            "Contract Start Date",
            "dealinformation",
            custom=True,
        ),
        _hs(
            "contract_end_date", "date", "date", "Contract End Date", "dealinformation", custom=True
        ),
        _hs("arr", "number", "number", "ARR", "dealinformation", custom=True),
        *_HS_COMMON,
    ),
    "tickets": (
        _hs("subject", "string", "text", "Ticket name", "ticketinformation"),
        _hs("content", "string", "textarea", "Ticket description", "ticketinformation"),
        _hs("hs_pipeline", "enumeration", "select", "Pipeline", "ticketinformation", "0"),
        _hs(
            "hs_pipeline_stage",
            "enumeration",
            "select",
            "Ticket status",
            "ticketinformation",
            "1",
            "2",
            "3",
            "4",
        ),
        _hs(
            "hs_ticket_priority",
            "enumeration",
            "select",
            "Priority",
            "ticketinformation",
            "LOW",
            "MEDIUM",
            "HIGH",
            "URGENT",
        ),
        _hs("closed_date", "datetime", "date", "Close date", "ticketinformation", read_only=True),
        _hs("csat_score", "number", "number", "CSAT score (1-5)", "ticketinformation", custom=True),
        *_HS_COMMON,
    ),
}

# The HubSpot cursor property of each object (contacts differ).
HS_MODIFIED_PROPERTY: dict[str, str] = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "tickets": "hs_lastmodifieddate",
}

# Association type ids of HubSpot-defined associations (v4), from -> to.
HS_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
    ("tickets", "companies"): 339,
    ("companies", "tickets"): 340,
}

# Product usage metrics the sandbox generates per account and day. Feature
# metrics are counts; active_users a count of distinct users; outcome_kpi the
# customer's own KPI (compare with the account's outcome target); nps a 0-10
# survey answer on the days someone answered.
USAGE_METRICS: tuple[str, ...] = (
    "active_users",
    "automations_run",
    "integrations_synced",
    "reports_built",
    "dashboards_viewed",
    "logins",
    "outcome_kpi",
    "nps",
)
HIGH_ROI_FEATURES: tuple[str, ...] = ("automations_run", "integrations_synced", "reports_built")


def sf_field(obj: str, name: str) -> SfField:
    for candidate in SF_OBJECTS[obj]:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{obj}.{name}")


def hs_property(obj: str, name: str) -> HsProperty:
    for candidate in HS_OBJECTS[obj]:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{obj}.{name}")
