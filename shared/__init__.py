"""Common code of the vcredit services: settings, event envelope and catalogue, bus,
outbox/inbox, database and HTTP helpers."""
