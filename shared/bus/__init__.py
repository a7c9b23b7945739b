"""Message bus: one interface, two backends (Kafka for distributed mode, an SQLite log for
embedded mode). The outbox relay and the consumer runner are written once against this
interface, so both backends have the same delivery semantics by construction."""

from shared.bus.base import Bus, BusConsumer, Message, Record

__all__ = ["Bus", "BusConsumer", "Message", "Record"]
