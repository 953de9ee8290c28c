"""The warehouse: connections, the embedded server, dbt runs and their test history, loading, locking, the master-data contract, freshness, retries."""
