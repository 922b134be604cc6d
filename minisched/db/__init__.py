"""The metadata database: engines, sessions, retries, migrations and the audit log."""
