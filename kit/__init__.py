"""The thin runtime kit every yiwang service shares: settings, db, errors, logs, events, auth."""
