"""The normalized store: tables, exact column types, migrations and the bulk upsert."""
