# SPDX-License-Identifier: MIT
# bench/run section: magicdns answering mesh names, beside dnsmasq serving
# the same names from a hosts file, in the same run (sourced by bench/run,
# which provides spawn, stop_pid, free_port, cpu_snap, cpu_busy, peak_rss,
# cpu_quiet_check, TMP and the CPU and run settings).
#
#   MAGICDNS [bin/magicdns]  MAGICDNS_NAMES [1000]
#   MAGICDNS_LAT_QPS [20000]  the fixed rate of the latency runs
#   MAGICDNS_FLOOD_PIPES [8]  MAGICDNS_FLOOD_HOLDS [300]  the TCP flood
#
# Throughput: dnsperf (one thread, 100 queries outstanding, its default)
# from LOAD_CPU against each server on SERVER_CPU, alternating runs,
# median queries per second. Latency: dnsperf at a fixed rate well below
# either server's ceiling (-Q), every answer's time (-v), p50 and p99;
# under saturation latency only measures the queue dnsperf keeps full.

MAGICDNS=${MAGICDNS:-bin/magicdns}
MAGICDNS_NAMES=${MAGICDNS_NAMES:-1000}
MAGICDNS_LAT_QPS=${MAGICDNS_LAT_QPS:-20000}

# The names: mesh.conf for magicdns, a hosts file for dnsmasq, the
# dnsperf query file, all alike.
magicdns_names() {
	local dir=$1 n=$2
	/usr/bin/python3 - "$dir" "$n" <<'PYEOF'
import base64, os, sys
d, n = sys.argv[1], int(sys.argv[2])
with open(d + "/mesh.conf", "w") as m, open(d + "/hosts", "w") as h, \
        open(d + "/queries", "w") as q:
    m.write("domain mesh.bench\n")
    for i in range(n):
        key = base64.b64encode(bytes([1]) + os.urandom(31)).decode()
        ip = "100.64.%d.%d" % (i // 250, i % 250 + 1)
        m.write("node n%d %s %s\n" % (i, key, ip))
        h.write("%s n%d.mesh.bench\n" % (ip, i))
        q.write("n%d.mesh.bench A\n" % i)
PYEOF
}

# dnsperf_ready NAME PID PORT LOG: wait up to 5 s for answers.
dnsperf_ready() {
	local name=$1 pid=$2 port=$3 log=$4 i
	for ((i = 0; i < 50; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited before answering; its output:" >&2
			tail -n 20 "$log" >&2
			return 1
		fi
		if dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 \
		    n0.mesh.bench 2>/dev/null | grep -q '^100\.64\.'; then
			return 0
		fi
		sleep 0.1
	done
	echo "$name did not answer on 127.0.0.1:$port within 5 s" >&2
	tail -n 20 "$log" >&2
	return 1
}

# dnsperf_run PORT SECONDS [ARGS...]: one dnsperf from the load CPU, its
# output in $TMP/dnsperf.out. In the background and waited for, so a
# signal to bench/run stops it at once.
dnsperf_run() {
	local port=$1 secs=$2
	shift 2
	taskset -c "$LOAD_CPU" nice -n "$BENCH_NICE" dnsperf -s 127.0.0.1 \
		-p "$port" -d "$TMP/dns/queries" -l "$secs" -c 1 -T 1 "$@" \
		>"$TMP/dnsperf.out" 2>&1 &
	LOADPID=$!
	wait "$LOADPID" || true
	LOADPID=
}

# The value after "Queries per second:" etc. in dnsperf's summary.
dnsperf_field() {
	sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$TMP/dnsperf.out" | head -n 1
}

# p50 and p99 of the latencies dnsperf -v printed, in ms; and how many
# answers were not NOERROR.
dnsperf_latency() {
	awk '$1 == ">" { n++; if ($2 != "NOERROR") bad++; print $NF * 1000 }
		END { print n " " bad + 0 > "/dev/stderr" }' \
		"$TMP/dnsperf.out" 2>"$TMP/lat.count" | sort -n >"$TMP/lat.sorted"
	awk 'NR == FNR { n++; next }
		FNR == int(n * 0.50 + 0.5) { p50 = $1 }
		FNR == int(n * 0.99 + 0.5) { p99 = $1 }
		END { printf "p50 %.3f ms p99 %.3f ms", p50, p99 }' \
		"$TMP/lat.sorted" "$TMP/lat.sorted"
}

median_file() {
	local n
	n=$(wc -l <"$1")
	sort -n "$1" | sed -n "$(((n + 1) / 2))p"
}

bench_magicdns() {
	local names=(dnsmasq magicdns) name port line i rc=0 qps lost before
	local after sbusy lbusy mq dq ratio n bad
	local -A PORT=() PID=() LAT=()

	echo "== magicdns: mesh names from memory, magicdns vs dnsmasq $(dnsmasq --version 2>/dev/null | head -n 1 | awk '{print $3}') =="
	if ! command -v dnsperf >/dev/null || ! command -v dnsmasq >/dev/null ||
	    ! command -v dig >/dev/null; then
		echo "dnsperf, dnsmasq and dig are needed: apt-get install dnsperf dnsmasq bind9-dnsutils" >&2
		return 1
	fi
	if [ ! -x "$MAGICDNS" ]; then
		echo "magicdns: $MAGICDNS is missing (not built yet?)" >&2
		return 1
	fi
	echo "$MAGICDNS_NAMES names; servers on CPU $SERVER_CPU, dnsperf on CPU $LOAD_CPU (1 thread, 100 outstanding), nice $BENCH_NICE; per server $BENCH_WARMUP s warm-up, $BENCH_RUNS runs of $BENCH_SECONDS s, median; latency at $MAGICDNS_LAT_QPS qps"
	cpu_quiet_check
	mkdir -p "$TMP/dns"
	magicdns_names "$TMP/dns" "$MAGICDNS_NAMES" || return 1

	PORT[dnsmasq]=$(free_port) || return 1
	spawn "$SERVER_CPU" "$TMP/dns/dnsmasq.log" dnsmasq -d --no-resolv \
		--no-hosts --addn-hosts="$TMP/dns/hosts" --bind-interfaces \
		--listen-address=127.0.0.1 -p "${PORT[dnsmasq]}" --pid-file= \
		--local=/mesh.bench/ --cache-size=10000
	PID[dnsmasq]=$SPAWNED
	dnsperf_ready dnsmasq "${PID[dnsmasq]}" "${PORT[dnsmasq]}" \
		"$TMP/dns/dnsmasq.log" || return 1

	PORT[magicdns]=$(free_port) || return 1
	if [ "${PORT[magicdns]}" = "${PORT[dnsmasq]}" ]; then
		PORT[magicdns]=$(free_port) || return 1
	fi
	spawn "$SERVER_CPU" "$TMP/dns/magicdns.log" "$MAGICDNS" -q \
		-c "$TMP/dns/mesh.conf" -u none -l "127.0.0.1:${PORT[magicdns]}"
	PID[magicdns]=$SPAWNED
	dnsperf_ready magicdns "${PID[magicdns]}" "${PORT[magicdns]}" \
		"$TMP/dns/magicdns.log" || return 1

	for name in "${names[@]}"; do
		dnsperf_run "${PORT[$name]}" "$BENCH_WARMUP"
		printf '  %-8s warm-up %s qps\n' "$name" "$(dnsperf_field 'Queries per second')"
		: >"$TMP/dns/$name.runs"
	done
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		for name in "${names[@]}"; do
			before=$(cpu_snap)
			dnsperf_run "${PORT[$name]}" "$BENCH_SECONDS"
			after=$(cpu_snap)
			sbusy=$(cpu_busy "$before" "$after" "$SERVER_CPU")
			lbusy=$(cpu_busy "$before" "$after" "$LOAD_CPU")
			qps=$(dnsperf_field 'Queries per second')
			lost=$(dnsperf_field 'Queries lost')
			printf '  %-8s run %d   %s qps, lost %s, avg latency %s s  [cpu%s %s%%, cpu%s %s%%]\n' \
				"$name" "$i" "${qps:-0}" "${lost:-?}" \
				"$(dnsperf_field 'Average Latency (s)')" \
				"$SERVER_CPU" "$sbusy" "$LOAD_CPU" "$lbusy"
			echo "${qps:-0}" >>"$TMP/dns/$name.runs"
			# dnsperf exits 0 even when everything was lost
			if [ -z "$lost" ] || [ "${lost%%.*}" -gt 0 ]; then
				echo "  WARNING: $name lost ${lost:-all} queries"
			fi
		done
	done
	for name in "${names[@]}"; do
		dnsperf_run "${PORT[$name]}" "$BENCH_SECONDS" -Q "$MAGICDNS_LAT_QPS" -v
		LAT[$name]=$(dnsperf_latency)
		read -r n bad <"$TMP/lat.count"
		printf '  %-8s latency at %s qps: %s (%s answers, %s not NOERROR)\n' \
			"$name" "$MAGICDNS_LAT_QPS" "${LAT[$name]}" "$n" "$bad"
		[ "${bad:-1}" = 0 ] || rc=1
	done

	mq=$(median_file "$TMP/dns/magicdns.runs")
	dq=$(median_file "$TMP/dns/dnsmasq.runs")
	ratio=$(awk -v m="$mq" -v d="$dq" \
		'BEGIN { if (d > 0) printf "%.2f", m / d; else print "inf" }')
	printf 'mesh names: magicdns %.0f qps, dnsmasq %.0f qps, ratio %sx (target >= 1x)\n' \
		"$mq" "$dq" "$ratio"
	echo "mesh names latency at $MAGICDNS_LAT_QPS qps: magicdns ${LAT[magicdns]}, dnsmasq ${LAT[dnsmasq]} (target p99 < 1 ms)"
	echo "mesh names peak RSS (VmHWM): magicdns $(peak_rss "${PID[magicdns]}") kB, dnsmasq $(peak_rss "${PID[dnsmasq]}") kB"
	if awk -v m="$mq" 'BEGIN { exit !(m == 0) }'; then
		rc=1
	fi
	magicdns_flood "${PORT[magicdns]}" || rc=1
	return "$rc"
}

# tcp_probe PORT SOURCE N: how many of N dig +tcp from SOURCE are answered.
tcp_probe() {
	local port=$1 src=$2 n=$3 i ok=0
	for ((i = 0; i < n; i++)); do
		if dig +tcp +short +time=2 +tries=1 -b "$src" -p "$port" \
		    @127.0.0.1 "n$i.mesh.bench" 2>/dev/null | grep -q '^100\.64\.'; then
			ok=$((ok + 1))
		fi
	done
	echo "$ok"
}

# magicdns under a TCP flood from one source (127.0.0.2): MAGICDNS_FLOOD_PIPES
# connections that keep 32 queries each in flight and MAGICDNS_FLOOD_HOLDS
# that hold a slot with a byte a second (the attack of a 0xffff length and
# a trickle). Everyone else: dnsperf over UDP from 127.0.0.1 (same settings
# as above), runs with and without the flood alternating, median; and 20
# dig +tcp from 127.0.0.3. The flooder is on the load CPU at nice 0, so
# dnsperf (nice BENCH_NICE) keeps most of that CPU. Loopback is this host's
# own, never rate-limited: this is the worst case, where only the per-source
# connection cap and the event loop's fairness protect the others (a remote
# source would also be held to --rate queries a second).
MAGICDNS_FLOOD_PIPES=${MAGICDNS_FLOOD_PIPES:-8}
MAGICDNS_FLOOD_HOLDS=${MAGICDNS_FLOOD_HOLDS:-300}
magicdns_flood() {
	local port=$1 i qps fl tq tb bq fq ratio fpid
	local peer=tests/tools/magicdns-peer.py
	local secs=$((BENCH_SECONDS + 2))

	echo "-- magicdns under a TCP flood from one source: $MAGICDNS_FLOOD_PIPES pipelining + $MAGICDNS_FLOOD_HOLDS slow connections from 127.0.0.2 --"
	: >"$TMP/dns/base.runs"
	: >"$TMP/dns/flood.runs"
	: >"$TMP/dns/flooder.out"
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		dnsperf_run "$port" "$BENCH_SECONDS"
		qps=$(dnsperf_field 'Queries per second')
		echo "${qps:-0}" >>"$TMP/dns/base.runs"
		printf '  no flood   run %d   others %s qps\n' "$i" "${qps:-0}"

		taskset -c "$LOAD_CPU" /usr/bin/python3 "$peer" flood \
			--source 127.0.0.2 127.0.0.1 "$port" "$MAGICDNS_FLOOD_PIPES" \
			"$MAGICDNS_FLOOD_HOLDS" "$secs" n0.mesh.bench \
			>"$TMP/dns/flooder.run" 2>&1 &
		fpid=$!
		PIDS+=("$fpid")
		sleep 1
		dnsperf_run "$port" "$BENCH_SECONDS"
		qps=$(dnsperf_field 'Queries per second')
		wait "$fpid" 2>/dev/null || true
		fl=$(cat "$TMP/dns/flooder.run")
		cat "$TMP/dns/flooder.run" >>"$TMP/dns/flooder.out"
		echo "${qps:-0}" >>"$TMP/dns/flood.runs"
		printf '  flood      run %d   others %s qps; flooder: %s\n' "$i" \
			"${qps:-0}" "$fl"
	done
	# TCP from a third source, during one more flood
	tb=$(tcp_probe "$port" 127.0.0.3 20)
	taskset -c "$LOAD_CPU" /usr/bin/python3 "$peer" flood --source 127.0.0.2 \
		127.0.0.1 "$port" "$MAGICDNS_FLOOD_PIPES" "$MAGICDNS_FLOOD_HOLDS" \
		"$secs" n0.mesh.bench >"$TMP/dns/flooder.run" 2>&1 &
	fpid=$!
	PIDS+=("$fpid")
	sleep 2
	tq=$(tcp_probe "$port" 127.0.0.3 20)
	wait "$fpid" 2>/dev/null || true
	bq=$(median_file "$TMP/dns/base.runs")
	fq=$(median_file "$TMP/dns/flood.runs")
	ratio=$(awk -v f="$fq" -v b="$bq" \
		'BEGIN { if (b > 0) printf "%.2f", f / b; else print "0" }')
	printf 'tcp flood from one source: others %.0f qps (UDP) beside %.0f qps without the flood, ratio %sx; dig +tcp from another source %s/20 answered (%s/20 without); the flooder: %s\n' \
		"$fq" "$bq" "$ratio" "$tq" "$tb" \
		"$(sed -n 's/^answered [0-9]* qps \([0-9]*\) closed \(.*\)/\1 answers a second, \2 connections closed early/p' "$TMP/dns/flooder.run")"
	awk -v f="$fq" 'BEGIN { exit !(f > 0) }' && [ "$tq" -gt 0 ]
}
