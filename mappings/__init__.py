"""The default mapping files, one per source, shipped with clghub.

A user's own mapping file (``mapping = "path.toml"`` in a source's config
section) overrides the shipped default key by key.
"""
