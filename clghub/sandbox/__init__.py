"""The sandbox: local emulators of Salesforce, HubSpot, Slack and a product
usage API, with a seeded dataset of a B2B SaaS company, served on one port.

It imports nothing of the rest of clghub: it is a server, and stays honest.
"""
