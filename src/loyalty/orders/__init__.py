"""Orders: idempotent ingestion from channel systems, refunds, guest orders."""
