"""The database: table definitions (SQLAlchemy Core) and the stores behind the payment and job ports.

SQLite file in the data dir by default; PostgreSQL for scale-out. The job store is the source of truth."""
