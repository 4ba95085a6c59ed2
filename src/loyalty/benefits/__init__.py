"""Benefits: catalog, tier entitlements with quotas, claims and reservations."""
