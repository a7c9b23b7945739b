"""Transactional outbox, inbox, relay, consumer runner and dead letters.

The guarantees, and where each comes from:
- An event exists iff its state change committed: ``emit`` writes the event into the
  service's own ``outbox`` table inside the caller's transaction.
- Nothing is lost: the relay marks outbox rows sent only after the bus acknowledged them;
  a relay that dies in between publishes them again on restart (at-least-once).
- Effects happen once: a consumer records ``(consumer, event_id)`` in its ``inbox`` in the
  same transaction as the handler's effects, and skips events already recorded. Offsets are
  committed only after that transaction, so a crash means redelivery, never loss.
- A handler that keeps failing does not stall its partition forever: after the configured
  tries the event is parked in ``<topic>.dlq`` with the error, and ``replay_dead_letters``
  puts it back on its topic once the cause is fixed.

Write the outbox row after locking the aggregate it describes: rows of one village then
get ids in commit order, and the relay publishes in id order.
"""

from __future__ import annotations

from shared.messaging.consumer import Consumer as Consumer
from shared.messaging.consumer import ConsumerStats as ConsumerStats
from shared.messaging.consumer import Finish as Finish
from shared.messaging.consumer import Handler as Handler
from shared.messaging.consumer import Prefetch as Prefetch
from shared.messaging.consumer import record_batch_in_inbox as record_batch_in_inbox
from shared.messaging.consumer import topics_of as topics_of
from shared.messaging.dead_letters import DeadLetter as DeadLetter
from shared.messaging.dead_letters import list_dead_letters as list_dead_letters
from shared.messaging.dead_letters import read_to_end as read_to_end
from shared.messaging.dead_letters import replay_dead_letters as replay_dead_letters
from shared.messaging.headers import H_ATTEMPTS as H_ATTEMPTS
from shared.messaging.headers import H_CONSUMER as H_CONSUMER
from shared.messaging.headers import H_ERROR as H_ERROR
from shared.messaging.headers import H_EVENT_ID as H_EVENT_ID
from shared.messaging.headers import H_EVENT_TYPE as H_EVENT_TYPE
from shared.messaging.headers import H_FAILED_AT as H_FAILED_AT
from shared.messaging.headers import H_ORIGINAL_OFFSET as H_ORIGINAL_OFFSET
from shared.messaging.headers import H_ORIGINAL_PARTITION as H_ORIGINAL_PARTITION
from shared.messaging.headers import H_ORIGINAL_TOPIC as H_ORIGINAL_TOPIC
from shared.messaging.outbox import OutboxSession as OutboxSession
from shared.messaging.outbox import emit as emit
from shared.messaging.outbox import session_class_for as session_class_for
from shared.messaging.relay import Relay as Relay
from shared.platform_tables import inbox as inbox
from shared.platform_tables import outbox as outbox
