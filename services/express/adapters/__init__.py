"""External systems express talks to: the carrier (EMS)."""
