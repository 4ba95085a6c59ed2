"""GraphQL of the benefits domain."""
