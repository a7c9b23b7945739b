"""Message header names: the event's type and id on every message the relay publishes, and
what a dead letter carries so an operator sees why and where from. Beside them every event
carries its CloudEvents headers (``ce_*``, ``content-type``: shared/cloudevents.py)."""

H_CONSUMER = "vcredit.consumer"
H_ERROR = "vcredit.error"
H_ATTEMPTS = "vcredit.attempts"
H_ORIGINAL_TOPIC = "vcredit.original_topic"
H_ORIGINAL_PARTITION = "vcredit.original_partition"
H_ORIGINAL_OFFSET = "vcredit.original_offset"
H_FAILED_AT = "vcredit.failed_at"
H_EVENT_TYPE = "vcredit.type"
H_EVENT_ID = "vcredit.event_id"
