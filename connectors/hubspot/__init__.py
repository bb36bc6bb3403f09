"""HubSpot CRM v3: list and windowed search for sync, batch update for writeback."""

from clghub.connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
