"""One module per emulated API; each exposes ``routes(state)``."""
