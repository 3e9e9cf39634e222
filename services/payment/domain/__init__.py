"""The payment service's rules: pure functions, no I/O."""
