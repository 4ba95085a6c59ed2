"""GraphQL of the tiers domain."""
