# SPDX-License-Identifier: MIT
# bench/run section: punch in the NAT lab (sourced by bench/run).
#
#   1. Time to a direct path once both nodes are on the relay (punch's own
#      "first direct path N ms after joining the relay", from the node that
#      joined second): EIM <-> EIM and full cone <-> EDM, median of
#      PUNCH_RUNS one-shot runs. Target: p50 under 300 ms.
#   2. iperf3 TCP through a WireGuard tunnel (wireguard-go) between h-eim1
#      and h-eim2, with punch --node carrying the packets, beside
#      wireguard-go sending directly between the same hosts (endpoints set
#      by hand) in the same run; the ratio. Target: at least 0.8.
#
#   PUNCH [bin/punch]  PUNCH_RUNS [10]  PUNCH_IPERF_SECONDS [5]

PUNCH=${PUNCH:-bin/punch}
PUNCH_RUNS=${PUNCH_RUNS:-10}
PUNCH_IPERF_SECONDS=${PUNCH_IPERF_SECONDS:-5}

# punch_direct_ms A_HOST B_HOST: one run; the ms on stdout
punch_direct_ms() {
	local a=$1 b=$2 d=$TMP/punch pb ms
	"$PB_LAB" exec "$b" timeout 30 "$ROOT/$PUNCH" -v -k "$d/b.key" \
		--relay "http://$RELAY_IP:80" "$(cat "$d/a.pub")" >/dev/null \
		2>"$d/b.log" &
	pb=$!
	for ((i = 0; i < 200; i++)); do
		grep -q "on the relay" "$d/b.log" 2>/dev/null && break
		sleep 0.02
	done
	"$PB_LAB" exec "$a" timeout 30 "$ROOT/$PUNCH" -v -k "$d/a.key" \
		--relay "http://$RELAY_IP:80" "$(cat "$d/b.pub")" >/dev/null \
		2>"$d/a.log" || true
	wait "$pb" 2>/dev/null || true
	ms=$(sed -n 's/.*first direct path \([0-9.]*\) ms after.*/\1/p' "$d/a.log" | head -n 1)
	[ -n "$ms" ] && echo "$ms"
}

# punch_iperf HOST ADDR: Mbit/s of one iperf3 TCP run to ADDR
punch_iperf() {
	"$PB_LAB" exec "$1" iperf3 -c "$2" -t "$PUNCH_IPERF_SECONDS" -J 2>/dev/null |
		python3 -c 'import json, sys
r = json.load(sys.stdin)
print("%.0f" % (r["end"]["sum_received"]["bits_per_second"] / 1e6))'
}

punch_bench_body() {
	local d=$TMP/punch pair a b ms f n pa pb wg_direct wg_punch
	mkdir -p "$d"
	export LAB_PREFIX=mkbp$$
	eval "$("$PB_LAB" up)"
	export $("$PB_LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	(umask 077
	 for n in a b; do
		"$ROOT/bin/wgsetup" genkey >"$d/$n.key"
		"$ROOT/bin/wgsetup" pubkey <"$d/$n.key" >"$d/$n.pub"
	 done)
	"$PB_LAB" exec relay "$ROOT/bin/derpcat" -l :80 --http >"$d/relay.log" 2>&1 &
	PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$d/relay.log" && break
		sleep 0.05
	done

	echo "time to a direct path once both are on the relay (median of $PUNCH_RUNS)"
	for pair in "h-eim1 h-eim2 EIM<->EIM" "h-full h-edm1 fullcone<->EDM"; do
		read -r a b name <<<"$pair"
		: >"$d/ms"
		for ((n = 0; n < PUNCH_RUNS; n++)); do
			punch_direct_ms "$a" "$b" >>"$d/ms" || true
		done
		n=$(wc -l <"$d/ms")
		[ "$n" -gt 0 ] || { echo "  $name: no direct path"; return 1; }
		printf '  %-16s p50 %6.1f ms  min %6.1f  max %6.1f  (%d of %d runs)\n' "$name" \
			"$(sort -n "$d/ms" | sed -n "$(((n + 1) / 2))p")" \
			"$(sort -n "$d/ms" | head -n 1)" "$(sort -n "$d/ms" | tail -n 1)" \
			"$n" "$PUNCH_RUNS"
	done

	echo "iperf3 TCP through WireGuard (wireguard-go), h-eim1 -> h-eim2, ${PUNCH_IPERF_SECONDS} s"
	# wireguard-go alone: endpoints by hand (the routers filter by address
	# and port, so both send at once with keepalive 1)
	for n in a b; do
		f=$d/$n.conf
		if [ $n = a ]; then peer=b ep=$EIM2_WAN addr=10.66.0.1 paddr=10.66.0.2
		else peer=a ep=$EIM1_WAN addr=10.66.0.2 paddr=10.66.0.1; fi
		printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = %s/24\n\n[Peer]\nPublicKey = %s\nEndpoint = %s:51820\nAllowedIPs = %s/32\nPersistentKeepalive = 1\n' \
			"$(cat "$d/$n.key")" "$addr" "$(cat "$d/$peer.pub")" "$ep" "$paddr" >"$f"
		chmod 600 "$f"
	done
	"$PB_LAB" exec h-eim1 "$ROOT/bin/wgsetup" -q up --userspace bpa$$ "$d/a.conf"
	"$PB_LAB" exec h-eim2 "$ROOT/bin/wgsetup" -q up --userspace bpb$$ "$d/b.conf"
	for ((i = 0; i < 200; i++)); do
		"$PB_LAB" exec h-eim1 ping -c 1 -W 1 10.66.0.2 >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$PB_LAB" exec h-eim2 iperf3 -s -1 -B 10.66.0.2 >/dev/null 2>&1 &
	pb=$!
	sleep 0.3
	wg_direct=$(punch_iperf h-eim1 10.66.0.2)
	wait "$pb" 2>/dev/null || true
	"$PB_LAB" exec h-eim1 "$ROOT/bin/wgsetup" -q down bpa$$
	"$PB_LAB" exec h-eim2 "$ROOT/bin/wgsetup" -q down bpb$$

	# the same through punch --node
	printf 'relay http://%s:80\nnode alice %s 100.64.0.1\nnode bob %s 100.64.0.2\n' \
		"$RELAY_IP" "$(cat "$d/a.pub")" "$(cat "$d/b.pub")" >"$d/mesh.conf"
	"$PB_LAB" exec h-eim1 "$ROOT/bin/wgsetup" -q up --userspace bpa$$ --mesh "$d/mesh.conf" --key "$d/a.key"
	"$PB_LAB" exec h-eim2 "$ROOT/bin/wgsetup" -q up --userspace bpb$$ --mesh "$d/mesh.conf" --key "$d/b.key"
	"$PB_LAB" exec h-eim1 "$ROOT/$PUNCH" --node "$d/mesh.conf" -k "$d/a.key" --wg bpa$$ >"$d/pa.out" 2>&1 &
	pa=$!
	PIDS+=($pa)
	"$PB_LAB" exec h-eim2 "$ROOT/$PUNCH" --node "$d/mesh.conf" -k "$d/b.key" --wg bpb$$ >"$d/pb.out" 2>&1 &
	PIDS+=($!)
	for ((i = 0; i < 400; i++)); do
		grep -q " direct " "$d/pa.out" && break
		sleep 0.05
	done
	"$PB_LAB" exec h-eim2 iperf3 -s -1 -B 100.64.0.2 >/dev/null 2>&1 &
	pb=$!
	sleep 0.3
	wg_punch=$(punch_iperf h-eim1 100.64.0.2)
	wait "$pb" 2>/dev/null || true
	grep -q " direct " "$d/pa.out" || echo "  (warning: punch never went direct)"
	printf '  wireguard-go direct   %6s Mbit/s\n' "$wg_direct"
	printf '  through punch --node  %6s Mbit/s\n' "$wg_punch"
	python3 -c 'import sys; print("  ratio %.2f (target >= 0.8)" % (float(sys.argv[2]) / float(sys.argv[1])))' \
		"$wg_direct" "$wg_punch"
	"$PB_LAB" exec h-eim1 "$ROOT/bin/wgsetup" -q down bpa$$ || true
	"$PB_LAB" exec h-eim2 "$ROOT/bin/wgsetup" -q down bpb$$ || true
}

punch_bench_cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		stop_pid "$p"
	done
	"$PB_LAB" exec h-eim1 "$ROOT/bin/wgsetup" -q down bpa$$ 2>/dev/null || true
	"$PB_LAB" exec h-eim2 "$ROOT/bin/wgsetup" -q down bpb$$ 2>/dev/null || true
	rm -f /var/lib/meshkit/punch-bp[ab]$$.port
	rmdir /var/lib/meshkit /run/meshkit 2>/dev/null || true
	"$PB_LAB" down >/dev/null 2>&1 || true
}

bench_punch() {
	echo "== punch (the NAT lab)"
	need iperf3 iperf3
	need wireguard-go wireguard-go
	PB_LAB=$ROOT/tests/lab/lab.sh
	# everything goes however the section ends: our processes, the
	# interfaces (wireguard-go would outlive its namespace), the lab
	(
		trap punch_bench_cleanup EXIT
		punch_bench_body
	)
}
