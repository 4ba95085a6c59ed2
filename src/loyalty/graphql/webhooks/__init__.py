"""GraphQL of the webhooks domain (admins manage the endpoints)."""
