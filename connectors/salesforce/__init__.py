"""Salesforce: streams through queryAll / Bulk API 2.0, writeback through sObject Collections."""

from clghub.connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]
