"""Points: the append-only ledger, lots and expiry, earning rules, redemption."""
