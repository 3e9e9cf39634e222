"""The e-licence service's rules: pure functions, no I/O."""
