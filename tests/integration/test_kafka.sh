# Kafka through loophole with real clients and a real broker implementation:
# librdkafka's mock cluster (tests/integration/kafka/mock_cluster.c) runs in
# containers with published ports, its brokers advertising
# 127.0.0.1:<port> as broker images advertise localhost:<container port>.
#   - one broker whose advertised port is not a container port (only the
#     single-broker rule can map it), found by sniffing;
#   - a 3-broker cluster in one container publishing 9092-9094, each broker
#     advertising its own container port;
#   - loophole.kafka=9092 (forced) and loophole.kafka=off (not rewritten).
# kcat lists every broker at its loophole address, produces and consumes with
# a consumer group; kafkajs (npm) does metadata, produce and a consumer group.
# No client is ever handed or connects to an address outside the pool.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in socat cc jq curl node npm; do need_tool "$t"; done
KCAT=$(kcat_bin) || fail "missing tool: kcat (apt-get install kafkacat)"
[ -f /usr/include/librdkafka/rdkafka_mock.h ] || fail "missing librdkafka-dev (rdkafka_mock.h)"

# A pool of this test's own: other daemons on this engine serve 127.0.77.x.
LH_POOL=127.0.85.2-127.0.85.60
T0=$(now_ms)
D=$LH_DOMAIN

# ---- The mock cluster program and kafkajs -------------------------------------

KDIR=$LOOPHOLE_SRC/tests/integration/kafka
mkdir -p "$LH_TMP/k"
cc -std=c11 -O1 -o "$LH_TMP/k/mock_cluster" "$KDIR/mock_cluster.c" -lrdkafka -ldl ||
    fail "cannot build the mock cluster program against librdkafka"

# kafkajs from npm, installed once per lockfile into a cache directory.
JS_DIR=${LH_KAFKAJS_DIR:-/tmp/loophole-kafkajs}
(
    flock 9
    mkdir -p "$JS_DIR"
    if ! cmp -s "$KDIR/package-lock.json" "$JS_DIR/package-lock.json" ||
        [ ! -f "$JS_DIR/node_modules/kafkajs/package.json" ]; then
        cp "$KDIR/package.json" "$KDIR/package-lock.json" "$JS_DIR/"
        (cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error >"$JS_DIR/npm.log" 2>&1) ||
            { cat "$JS_DIR/npm.log" >&2; rm -f "$JS_DIR/package-lock.json"; exit 1; }
    fi
) 9>/tmp/loophole-kafkajs.lock || fail "npm ci of kafkajs failed"
cp "$KDIR/client.js" "$JS_DIR/client.js"
log "mock cluster built, kafkajs ready ($(($(now_ms) - T0)) ms)"

start_daemon

# kafka_ctr NAME BROKERS FIRST-PORT "PUBLISHED-PORTS" [DOCKER-ARGS...]: a
# container running the mock cluster (brokers on 127.0.0.1:FIRST-PORT...)
# with socat relaying each published port from the container's own address
# to broker i (so Docker's published port reaches it).
kafka_ctr() {
    local name=$1 n=$2 first=$3 ports=$4
    shift 4
    local args=() p script
    for p in $ports; do args+=(-p "$p"); done
    script="/k/mock_cluster $n $first t 3 &
ip=\$(hostname -i | sed 's/ .*//')
i=0
for p in $ports; do
  /usr/bin/socat TCP-LISTEN:\$p,bind=\$ip,fork,reuseaddr TCP:127.0.0.1:\$(($first + i)) &
  i=\$((i + 1))
done
wait"
    run_host_server --name "$name" -v "$LH_TMP/k:/k:ro" "${args[@]}" "$@" -- /bin/sh -c "$script"
}

kafka_ctr "lh-kafka-$RUN_ID" 1 19092 9092 >/dev/null
kafka_ctr "lh-kcluster-$RUN_ID" 3 9092 "9092 9093 9094" >/dev/null
kafka_ctr "lh-kforce-$RUN_ID" 1 19092 9092 --label loophole.kafka=9092 >/dev/null
kafka_ctr "lh-koff-$RUN_ID" 1 19092 9092 --label loophole.kafka=off >/dev/null
a1=$(expect_address "lh-kafka-$RUN_ID.$D")
a3=$(expect_address "lh-kcluster-$RUN_ID.$D")
af=$(expect_address "lh-kforce-$RUN_ID.$D")
ao=$(expect_address "lh-koff-$RUN_ID.$D")
log "single $a1, cluster $a3, forced $af, off $ao"

# brokers ADDR PORT: "id host:port" per broker from kcat -L, sorted.
brokers() {
    timeout 20 "$KCAT" -b "$1:$2" -L -m 5 2>/dev/null |
        sed -n 's/^ *broker \([0-9]*\) at \([^ ]*\).*/\1 \2/p' | sort
}
has_brokers() { [ "$(brokers "$1" "$2" | wc -l)" -eq "$3" ]; }
wait_for -t 30 has_brokers "$a1" 9092 1 || fail "kcat -L through $a1:9092 lists no broker"
wait_for -t 30 has_brokers "$a3" 9092 3 || fail "kcat -L through $a3:9092 does not list 3 brokers"
wait_for -t 30 has_brokers "$af" 9092 1 || fail "kcat -L through $af:9092 lists no broker"
wait_for -t 30 has_brokers "$ao" 9092 1 || fail "kcat -L through $ao:9092 lists no broker"
log "all brokers answer through loophole ($(($(now_ms) - T0)) ms)"

# ---- Metadata: every broker at its loophole address ---------------------------

# The single broker advertises 127.0.0.1:19092, which is no container port:
# the only broker of the reply is the one the client is talking to.
assert_eq "1 $a1:9092" "$(brokers "$a1" 9092)" "kcat -L through the single broker"
want="1 $a3:9092
2 $a3:9093
3 $a3:9094"
# Each broker of the cluster keeps its own port, whichever broker answers.
for p in 9092 9093 9094; do
    assert_eq "$want" "$(brokers "$a3" $p)" "kcat -L through $a3:$p"
done
assert_eq "1 $af:9092" "$(brokers "$af" 9092)" "kcat -L with loophole.kafka=9092"
# loophole.kafka=off: passed through untouched (what the broker advertises).
assert_eq "1 127.0.0.1:19092" "$(brokers "$ao" 9092)" "kcat -L with loophole.kafka=off"
mp=$(host_port "lh-kcluster-$RUN_ID" 9093/tcp)
[ -n "$mp" ] || fail "no mapped port for the cluster's 9093"
brokers "$a3" 9092 | grep -q ":$mp\$" && fail "a client was handed Docker's mapped port $mp"

# ---- kcat: produce, consume with a consumer group -----------------------------

# kcat_check NAME ADDR: produces 12 messages and consumes them with a
# consumer group, with librdkafka's broker debug log, in which every address
# must be loophole's.
kcat_check() {
    local name=$1 a=$2 i dbg=$LH_TMP/kcat-$1.log
    for i in $(seq 1 12); do echo "$RUN_ID-$name-$i"; done |
        timeout 30 "$KCAT" -b "$a:9092" -P -t t -X acks=all -d broker,topic,metadata 2>"$dbg" ||
        fail "kcat produce through $a:9092 failed (see below)$(tail -n 20 "$dbg" >&2)"
    local got
    got=$(timeout 60 "$KCAT" -b "$a:9092" -G "g-$name-$RUN_ID" -X auto.offset.reset=earliest \
        -d broker,cgrp,metadata -c 12 -e -f '%s\n' t 2>>"$dbg" | grep -c "^$RUN_ID-$name-" || true)
    assert_eq 12 "$got" "messages consumed with kcat -G through $a:9092"
    grep -q "Connecting to ipv4#" "$dbg" || fail "no connection in kcat's debug log $dbg"
    local bad
    bad=$(addrs_outside_pool <"$dbg")
    [ -z "$bad" ] || fail "kcat through $a was handed addresses outside the pool: $bad"
    grep -Eo 'Connecting to ipv4#[0-9.]+:[0-9]+' "$dbg" | grep -Ev ':909[234]$' &&
        fail "kcat through $a connected to a port that is no container port"
    log "kcat $name: produce, consume -G ok ($(grep -c 'Connecting to ipv4#' "$dbg") connections)"
}
kcat_check single "$a1"
kcat_check cluster "$a3"

# ---- kafkajs ------------------------------------------------------------------

# js_check NAME ADDR WANT-BROKERS: metadata, produce, consumer group.
js_check() {
    local out
    out=$(cd "$JS_DIR" && timeout 90 node client.js "$2:9092" t "gjs-$1-$RUN_ID" "$RUN_ID-$1") ||
        fail "kafkajs through $2:9092 failed: $out"
    log "kafkajs $1: $(jq -c '{brokers, produced, consumed: (.consumed | length), errors}' <<<"$out")"
    assert_eq "{}" "$(jq -c .errors <<<"$out")" "kafkajs errors through $2"
    assert_eq "$3" "$(jq -r '.brokers | sort | join(",")' <<<"$out")" "kafkajs DescribeCluster through $2"
    assert_eq "t/3" "$(jq -r '.metadata | join(",")' <<<"$out")" "kafkajs topic metadata through $2"
    assert_eq 5 "$(jq -r .produced <<<"$out")" "kafkajs produced through $2"
    assert_eq 5 "$(jq -r '.consumed | length' <<<"$out")" "kafkajs consumed (consumer group) through $2"
    local bad
    bad=$(jq -r '.connects[]' <<<"$out" | addrs_outside_pool)
    [ -z "$bad" ] || fail "kafkajs through $2 connected outside the pool: $bad"
    jq -r '.connects[]' <<<"$out" | grep -q . || fail "kafkajs recorded no connection"
}
js_check single "$a1" "1@$a1:9092"
js_check cluster "$a3" "1@$a3:9092,2@$a3:9093,3@$a3:9094"

# ---- The control API and the log -----------------------------------------------

kafka_flag() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
        jq -r --arg n "$1" --argjson p "$2" \
            '.[] | select(.container == $n) | .ports[] | select(.port == $p and .proto == "tcp") | .kafka'
}
if control_up; then
    assert_eq true "$(kafka_flag "lh-kafka-$RUN_ID" 9092)" "kafka flag of the single broker's 9092"
    for p in 9092 9093 9094; do
        assert_eq true "$(kafka_flag "lh-kcluster-$RUN_ID" $p)" "kafka flag of the cluster's $p"
    done
    assert_eq true "$(kafka_flag "lh-kforce-$RUN_ID" 9092)" "kafka flag of the forced 9092"
    assert_eq false "$(kafka_flag "lh-koff-$RUN_ID" 9092)" "kafka flag with loophole.kafka=off"
else
    fail "the control API does not answer on $LH_SOCK"
fi
log_has "kafka: .*(unchanged|broken)" && fail "the daemon passed Kafka responses through unchanged: $(grep -Ei 'kafka: ' "$LH_LOG" | head -3)"
log_has "is no container loophole serves" && fail "a broker was left unmapped: $(grep -i 'no container loophole' "$LH_LOG" | head -3)"

stop_daemon
log "passed in $(($(now_ms) - T0)) ms"
