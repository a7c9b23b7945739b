#!/bin/bash
# As the script of the same name in Kafka's distribution.
exec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"
