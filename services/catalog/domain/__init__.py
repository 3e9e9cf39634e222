"""Catalog's rules: pure functions, no I/O."""
