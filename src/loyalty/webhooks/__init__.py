"""Webhooks: endpoints that admins subscribe to domain events, and the signed HTTP deliveries
(outbox rows of kind ``webhook.delivery``) written with each event."""
