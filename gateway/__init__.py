"""The one public door: routes /api/v1/<area>/…, verifies tokens and signatures, limits, measures."""
