"""History backends: memory, SQLite, PostgreSQL (one module each, loaded lazily)."""
