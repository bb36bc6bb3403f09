"""Workflows: one module per computation over the store (set-based SQL)."""
