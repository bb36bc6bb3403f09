"""Ingest: the stream protocol, mappings, identity and the sync runner."""
