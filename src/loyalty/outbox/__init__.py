"""The delivery outbox: everything sent out of a transaction (domain events, and next webhook
deliveries and member messages) is a row written with the change it describes, then claimed,
sent and marked by :mod:`loyalty.outbox.service`."""
