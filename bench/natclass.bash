# SPDX-License-Identifier: MIT
# bench/run section: natclass's time to a full verdict (mapping and
# filtering) on the lab's EIM and EDM hosts, beside coturn's
# turnutils_natdiscovery -m -f on the same hosts in the same run, both
# against the same RFC 5780 responder (stunq -l --alt).
# Target: under 1.5 s, and a quarter of natdiscovery's time or less.

NATCLASS_RUNS=${NATCLASS_RUNS:-5}

# Seconds (3 decimals) a command takes, from bash's monotonic clock.
natclass_time() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || true
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

natclass_median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

bench_natclass() {
	local lab="$ROOT/tests/lab/lab.sh" h nat ref rn rr ok=0
	need turnutils_natdiscovery coturn
	[ -x "$ROOT/bin/natclass" ] || { echo "bench: bin/natclass missing (make)" >&2; return 1; }
	echo "== natclass: time to a full verdict vs turnutils_natdiscovery -m -f =="
	export LAB_PREFIX=mkbn$$
	eval "$("$lab" up)" || return 1
	# shellcheck disable=SC2064
	trap "\"$lab\" down; cleanup" EXIT
	"$lab" exec stun "$ROOT/bin/stunq" -l "$STUN_IP1" --alt "$STUN_IP2" \
		>"$TMP/natclass-responder.log" 2>&1 &
	PIDS+=("$!")
	until "$lab" exec pub "$ROOT/bin/stunq" -q -t 0.2 "$STUN_IP1" >/dev/null 2>&1; do
		ok=$((ok + 1)); [ $ok -lt 25 ] || { echo "bench: responder did not start" >&2; return 1; }
	done
	echo "median of $NATCLASS_RUNS runs per host, lab hosts behind nftables NATs"
	for h in h-eim1 h-edm1; do
		nat=$(for _ in $(seq "$NATCLASS_RUNS"); do
			natclass_time "$lab" exec "$h" "$ROOT/bin/natclass" --no-portmap "$STUN_IP1"
		done | natclass_median)
		ref=$(for _ in $(seq "$NATCLASS_RUNS"); do
			natclass_time "$lab" exec "$h" turnutils_natdiscovery -m -f "$STUN_IP1"
		done | natclass_median)
		rn=$("$lab" exec "$h" "$ROOT/bin/natclass" --no-portmap "$STUN_IP1" 2>/dev/null)
		rr=$(awk -v a="$nat" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
		printf '  %-7s natclass %s s (%s), natdiscovery %s s, ratio %s (target < 1.5 s and <= 0.25)\n' \
			"$h" "$nat" "$rn" "$ref" "$rr"
	done
	stop_pid "${PIDS[-1]}"
	"$lab" down
	trap cleanup EXIT
}
