"""Exchange (部门系统对接): department systems push signed events in and receive their cases as webhooks (ADR 0019)."""
