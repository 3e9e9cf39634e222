"""The express service's rules: pure functions, no I/O."""
