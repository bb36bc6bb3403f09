"""Connectors: one package per source or destination.

Each implements the stream protocol of ``clghub.sync.stream`` (and, for a
CRM, the writer protocol of ``clghub.writeback``); ``clghub.pipeline`` is
the one place that wires them to configured jobs.
"""
