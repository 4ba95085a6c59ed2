"""GraphQL of the delivery outbox (admins watch and drive deliveries)."""
