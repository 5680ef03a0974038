# SPDX-License-Identifier: MIT
# bench/derpcat.bash: the derpcat section of `make bench` (sourced by
# bench/run, which provides spawn, stop_pid, cpu_snap, cpu_busy, $TMP ...).
#
# Relay goodput with 1400-byte packets, 1 and 8 client pairs, plain HTTP and
# TLS, beside raw loopback TCP measured in the same run by the same load
# generator (tests/tools/derpcat-load.c) writing the same records over one
# direct connection; packets per second with small packets; the server's
# memory per idle TLS client with 10,000 of them.
#
# The relay runs on SERVER_CPU, the load generator (one process, every
# sender and receiver) on LOAD_CPU. Each pair keeps at most 128 packets on
# the way, as a client with end-to-end flow control does; what does not
# arrive is counted lost (lost=), and the relay's own drop counters are
# printed: the goodput is what the relay carries without dropping. (The
# relay writes a full queue of 32 out before it drops from it, so only a
# receiver that stops reading loses packets.) One more run keeps 32, as a
# cautious client does (derpcat's stream mode keeps 20). The TCP baseline
# has no limit.
#
# Environment: DERPCAT [bin/derpcat], DERP_IDLE_CLIENTS [10000].

DERPCAT=${DERPCAT:-bin/derpcat}
DERP_IDLE_CLIENTS=${DERP_IDLE_CLIENTS:-10000}

build_derpload() {
	mkdir -p "$BENCH_BUILD"
	"$CC" -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
		tests/tools/derpcat-load.c -o "$BENCH_BUILD/derpcat-load" \
		-lsodium -lssl -lcrypto || return 1
	DERPLOAD=$BENCH_BUILD/derpcat-load
}

# derp_start NAME ARGS...: a relay on SERVER_CPU with a high descriptor
# limit; sets DPORT, DPID, DLOG.
derp_start() {
	local name=$1 i
	shift
	DLOG=$TMP/$name.log
	# ulimit in a subshell: the relay inherits it, this script does not
	(ulimit -n "$(ulimit -Hn)" && exec taskset -c "$SERVER_CPU" nice -n "$BENCH_NICE" \
		setpriv --pdeathsig KILL -- "$DERPCAT" -l 127.0.0.1:0 \
		--stun-port 0 --max-conns 0 "$@" </dev/null >"$DLOG" 2>&1) &
	DPID=$!
	PIDS+=("$DPID")
	for ((i = 0; i < 100; i++)); do
		if grep -q 'listening on' "$DLOG" 2>/dev/null; then
			DPORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$DLOG")
			# the subshell exec'd: DPID is the relay itself
			return 0
		fi
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	echo "$name did not start; its output:" >&2
	tail -n 20 "$DLOG" >&2
	return 1
}

# derp_load ARGS...: one load run on LOAD_CPU; its line in LINE.
derp_load() {
	taskset -c "$LOAD_CPU" nice -n "$BENCH_NICE" "$DERPLOAD" "$@" \
		>"$TMP/dload.out" 2>"$TMP/dload.err" &
	LOADPID=$!
	wait "$LOADPID" || true
	LOADPID=
	LINE=$(cat "$TMP/dload.out")
	[ -n "$LINE" ] || LINE="goodput_mbps=0 pps=0 (failed: $(head -c 200 "$TMP/dload.err"))"
}

# dmedian FILE FIELD: the median of FIELD=value over the lines of FILE.
dmedian() {
	tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

vm_rss() {
	awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' \
		"/proc/$1/status" 2>/dev/null || echo 0
}

bench_derpcat() {
	local runs=() name i before after sbusy lbusy rc=0
	local pplain ptls mem0 mem1 per n url

	echo "== derpcat: DERP relay goodput (1400-byte packets), pps, memory per idle TLS client =="
	echo "relay on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU, nice $BENCH_NICE; $BENCH_RUNS runs of $BENCH_SECONDS s (+1 s warm-up each), median"
	if [ ! -x "$DERPCAT" ]; then
		echo "derpcat: $DERPCAT is missing (not built yet?)"
		return 1
	fi
	build_derpload || { echo "cannot build tests/tools/derpcat-load.c" >&2; return 1; }
	cpu_quiet_check
	derp_start plain --http || return 1
	pplain=$DPORT
	echo "$DPID" >"$TMP/plain.pid"
	derp_start tls --state "$TMP/derp-state" || return 1
	ptls=$DPORT

	# name and the load generator's arguments, alternated run by run so a
	# slow patch of this shared machine hits all of them
	runs=(tcp plain1 plain8 tls1 tls8 pps8 w32)
	declare -A ARGS=(
		[tcp]="tcp $BENCH_SECONDS 1400"
		[plain1]="-w 128 goodput http://127.0.0.1:$pplain 1 $BENCH_SECONDS 1400"
		[plain8]="-w 128 goodput http://127.0.0.1:$pplain 8 $BENCH_SECONDS 1400"
		[tls1]="-t -w 128 goodput https://127.0.0.1:$ptls 1 $BENCH_SECONDS 1400"
		[tls8]="-t -w 128 goodput https://127.0.0.1:$ptls 8 $BENCH_SECONDS 1400"
		[pps8]="-w 128 goodput http://127.0.0.1:$pplain 8 $BENCH_SECONDS 64"
		[w32]="-w 32 goodput http://127.0.0.1:$pplain 1 $BENCH_SECONDS 1400"
	)
	for name in "${runs[@]}"; do : >"$TMP/d-$name.runs"; done
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		for name in "${runs[@]}"; do
			before=$(cpu_snap)
			# shellcheck disable=SC2086
			derp_load ${ARGS[$name]}
			after=$(cpu_snap)
			sbusy=$(cpu_busy "$before" "$after" "$SERVER_CPU")
			lbusy=$(cpu_busy "$before" "$after" "$LOAD_CPU")
			printf '  %-6s run %d  %s  [cpu%s %s%%, cpu%s %s%%]\n' "$name" "$i" \
				"$LINE" "$SERVER_CPU" "$sbusy" "$LOAD_CPU" "$lbusy"
			echo "$LINE" >>"$TMP/d-$name.runs"
		done
	done
	local tcp p1 p8 t1 t8 pps w32 lost
	tcp=$(dmedian "$TMP/d-tcp.runs" goodput_mbps)
	w32=$(dmedian "$TMP/d-w32.runs" goodput_mbps)
	lost=$(cat "$TMP"/d-*.runs | tr ' ' '\n' | sed -n 's/^lost=//p' |
		awk '{ s += $1 } END { print s + 0 }')
	p1=$(dmedian "$TMP/d-plain1.runs" goodput_mbps)
	p8=$(dmedian "$TMP/d-plain8.runs" goodput_mbps)
	t1=$(dmedian "$TMP/d-tls1.runs" goodput_mbps)
	t8=$(dmedian "$TMP/d-tls8.runs" goodput_mbps)
	pps=$(dmedian "$TMP/d-pps8.runs" pps)
	echo "relay goodput, plain HTTP: 1 pair $p1 Mbit/s, 8 pairs $p8 Mbit/s; raw loopback TCP $tcp Mbit/s; ratio $(ratio "$p1" "$tcp") and $(ratio "$p8" "$tcp") (target >= 0.5)"
	echo "relay goodput, TLS:        1 pair $t1 Mbit/s, 8 pairs $t8 Mbit/s; ratio to raw TCP $(ratio "$t1" "$tcp") and $(ratio "$t8" "$tcp")"
	echo "relay packets per second: $(dmedian "$TMP/d-plain8.runs" pps) with 1400-byte packets, $pps with 64-byte packets (8 pairs, plain); TLS $(dmedian "$TMP/d-tls8.runs" pps) with 1400-byte packets"
	echo "  (anchor, perf-anchors.md 1.2: Go derper about 45-80k pkt/s per vCPU with TLS and 1400-byte packets)"
	echo "relay goodput, 1 pair keeping only 32 packets on the way: $w32 Mbit/s (ratio $(ratio "$w32" "$tcp"))"
	# the relays' own count of what they dropped, and the clients'
	kill -USR1 "$DPID" "$(cat "$TMP/plain.pid")" 2>/dev/null
	sleep 0.3
	echo "lost packets (load generator, all runs): $lost; relay drops: plain:$(sed -n 's/.*drops://p' "$TMP/plain.log" | tail -n 1); tls:$(sed -n 's/.*drops://p' "$TMP/tls.log" | tail -n 1)"
	for name in plain1 plain8 tls1 tls8 pps8 w32; do
		[ "$(dmedian "$TMP/d-$name.runs" goodput_mbps)" != 0 ] || rc=1
	done
	stop_pid "$(cat "$TMP/plain.pid")"
	stop_pid "$DPID"

	# memory: a fresh TLS relay, its RSS before and after N idle clients
	# from a separate process (each client's TLS handshake done, then
	# nothing); a client costs what it adds
	derp_start idle --state "$TMP/derp-state" || return 1
	url=https://127.0.0.1:$DPORT
	# as many as the descriptor limit allows (raised to the hard limit)
	n=$DERP_IDLE_CLIENTS
	if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((n + 64)) ]; then
		n=$(($(ulimit -Hn) - 64))
		echo "NOTE: the descriptor limit ($(ulimit -Hn)) allows only $n idle clients"
	fi
	mem0=$(vm_rss "$DPID")
	(ulimit -n "$(ulimit -Hn)" && exec taskset -c "$LOAD_CPU" "$DERPLOAD" -t idle \
		"$url" "$n") >"$TMP/idle.out" 2>"$TMP/idle.err" &
	LOADPID=$!
	for ((i = 0; i < 1200; i++)); do
		grep -q '^ready' "$TMP/idle.out" 2>/dev/null && break
		kill -0 "$LOADPID" 2>/dev/null || break
		sleep 0.1
	done
	n=$(sed -n 's/^ready \([0-9]*\)/\1/p' "$TMP/idle.out")
	if [ -z "$n" ] || [ "$n" = 0 ]; then
		echo "idle clients did not connect: $(head -c 300 "$TMP/idle.err")"
		stop_pid "$LOADPID"
		LOADPID=
		return 1
	fi
	sleep 1
	mem1=$(vm_rss "$DPID")
	per=$(awk -v a="$mem0" -v b="$mem1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
	echo "server memory with $n idle TLS clients: RSS $mem0 kB -> $mem1 kB, $per KiB per client (target <= 16 KiB; Go derper about 14.5 KB, perf-anchors.md 1.3)"
	stop_pid "$LOADPID"
	LOADPID=
	stop_pid "$DPID"
	return "$rc"
}
