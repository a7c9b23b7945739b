#!/bin/bash
# Run a Kafka command-line tool's main class:  kafka-run-class.sh CLASS [ARG...]
#
#   KAFKA_HEAP_OPTS             heap (default -Xmx256m, as Kafka's own script)
#   KAFKA_TOOLS_LOG4J_LOGLEVEL  log level, to stderr (default WARN)
#
# Unlike Kafka's script this leaves KAFKA_OPTS to the broker: it often holds flags only
# the broker may use (a JMX agent's port), and the health check runs a tool every 10 s.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 CLASS [ARG...]" >&2; exit 2; }
class=$1
shift
read -r -a heap_opts <<<"${KAFKA_HEAP_OPTS:--Xmx256m}"
# A tool lives a second or two: the client compiler and the serial collector start
# faster and use less memory than the broker's G1 and C2.
exec java "${heap_opts[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dkafka.tools.loglevel="${KAFKA_TOOLS_LOG4J_LOGLEVEL:-WARN}" \
    -Dlog4j.configuration=file:/opt/kafka/config/tools-log4j.properties \
    -cp '/opt/kafka/libs/*' "$class" "$@"
