"""The database, migrations and the blob store."""
