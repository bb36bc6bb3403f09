"""Product usage: a declarative REST source, CSV / JSONL files and SQL queries."""

from clghub.connectors.product_usage.connector import ProductUsageConnector

__all__ = ["ProductUsageConnector"]
