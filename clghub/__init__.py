"""clghub: an integration hub for customer-led growth.

CRM and product data come in through ``clghub.connectors``, land in one
normalized store (``clghub.store``), are turned into value figures by
``clghub.workflows``, and go back out to CRM fields and Slack.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
