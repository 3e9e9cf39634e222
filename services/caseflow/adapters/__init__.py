"""Caseflow's adapters to systems outside it (each: a sandbox and an HTTP implementation)."""
