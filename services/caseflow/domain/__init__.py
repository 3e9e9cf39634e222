"""Caseflow rules: pure functions, no I/O."""
