# SPDX-License-Identifier: MIT
# bench/run section: wgsetup applying 10,000 peers, beside wg setconf with
# the same peers in the same run (sourced by bench/run, which provides
# TMP, BENCH_RUNS, stop_pid and the rest).
#
#   WGSETUP [bin/wgsetup]  WGSETUP_PEERS [10000]
#   WGSETUP_BENCH_KERNEL [1]  also kernel WireGuard in QEMU (about 2 min)
#
# wireguard-go: in a network namespace of the bench's own, each
# measurement on a fresh interface that is alone in it (a set of peers
# costs more on an interface that already has them, and a wireguard-go
# still busy with the last set slows the next), alternating which tool goes
# first; median wall time of BENCH_RUNS runs.
# Kernel: tests/qemu/run.sh bench boots Debian's kernel under software
# emulation and times the same pair there (two rounds; in centiseconds of
# the guest's clock, so coarse).

WGSETUP=${WGSETUP:-bin/wgsetup}
WGSETUP_PEERS=${WGSETUP_PEERS:-10000}
WGSETUP_BENCH_KERNEL=${WGSETUP_BENCH_KERNEL:-1}

wgsetup_ms() {
	local s e
	s=$(date +%s%N)
	"$@" >/dev/null || return 1
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}

# wgsetup_median FILE: the median of one number a line.
wgsetup_median() {
	local n
	n=$(wc -l <"$1")
	sort -n "$1" | sed -n "$(((n + 1) / 2))p"
}

wgsetup_bench_cleanup() {
	local ns=$1 i
	ip netns exec "$ns" "$WGSETUP" down "${WGB_IF}x" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
}

# wgsetup_one NS DIR TOOL: TOOL's setconf of the big set onto a fresh
# interface, its time in ms on stdout. Each measurement has the namespace
# to itself: the interface is made just before and removed just after, so a
# wireguard-go still busy with the previous set (its goroutines per peer,
# its garbage collector) cannot slow the next one down.
wgsetup_one() {
	local ns=$1 dir=$2 tool=$3 ifc=${WGB_IF}x t n
	ip netns exec "$ns" "$WGSETUP" up "$ifc" "$dir/min.conf" >/dev/null || return 1
	if [ "$tool" = wg ]; then
		t=$(wgsetup_ms ip netns exec "$ns" wg setconf "$ifc" "$dir/big.conf")
	else
		t=$(wgsetup_ms ip netns exec "$ns" "$WGSETUP" setconf "$ifc" "$dir/big.conf")
	fi || { ip netns exec "$ns" "$WGSETUP" down "$ifc"; return 1; }
	n=$(ip netns exec "$ns" wg show "$ifc" peers | wc -l)
	ip netns exec "$ns" "$WGSETUP" down "$ifc" || return 1
	if [ "$n" != "$WGSETUP_PEERS" ]; then
		echo "  $tool set $n peers, not $WGSETUP_PEERS" >&2
		return 1
	fi
	echo "$t"
}

bench_wgsetup_userspace() {
	local ns=mkwgb$$ dir=$TMP/wgsetup i t rc=0 order first
	WGB_IF=wgb$$
	mkdir -p "$dir"
	# no ListenPort: two interfaces share the namespace
	/usr/bin/python3 tests/qemu/bigconf.py "$WGSETUP_PEERS" 0 |
		grep -v '^ListenPort' >"$dir/big.conf"
	printf '[Interface]\nPrivateKey = %s\n' "$("$WGSETUP" genkey)" >"$dir/min.conf"
	ip netns add "$ns" || return 1
	NETNS+=("$ns")
	: >"$dir/wg.ms"
	: >"$dir/wgsetup.ms"
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		if [ $((i % 2)) = 1 ]; then order="wg wgsetup"; else order="wgsetup wg"; fi
		for first in $order; do
			t=$(wgsetup_one "$ns" "$dir" "$first") || { rc=1; break 2; }
			echo "$t" >>"$dir/$first.ms"
			printf '  run %d %-8s %6d ms\n' "$i" "$first" "$t"
		done
	done
	wgsetup_bench_cleanup "$ns"
	[ "$rc" = 0 ] || return 1
	wgsetup_report "wireguard-go" "$(wgsetup_median "$dir/wgsetup.ms")" \
		"$(wgsetup_median "$dir/wg.ms")" ms
}

# wgsetup_report WHERE OURS WG UNIT
wgsetup_report() {
	local ratio
	ratio=$(awk -v o="$2" -v w="$3" \
		'BEGIN { if (o > 0) printf "%.2f", w / o; else print "inf" }')
	echo "wgsetup $WGSETUP_PEERS peers on $1: wgsetup setconf $2 $4, wg setconf $3 $4, ratio (wg/wgsetup) ${ratio}x (target >= 1: no slower than wg)"
}

bench_wgsetup_kernel() {
	local out=$TMP/wgsetup/qemu.out
	if ! command -v qemu-system-x86_64 >/dev/null; then
		echo "  kernel: qemu-system-x86_64 missing (apt-get install qemu-system-x86); skipped"
		return 1
	fi
	MK_BIN=$(dirname "$WGSETUP") tests/qemu/run.sh bench >"$out" 2>&1 ||
		{ tail -n 20 "$out"; return 1; }
	sed -n 's/^bench /  /p' "$out"
	wgsetup_report "kernel WireGuard (QEMU, software emulation)" \
		"$(awk '$2 == "kernel_wgsetup_setconf_cs" { print $3 }' "$out" | sort -n | head -n 1)0" \
		"$(awk '$2 == "kernel_wg_setconf_cs" { print $3 }' "$out" | sort -n | head -n 1)0" \
		"ms (best of 2)"
}

bench_wgsetup() {
	local rc=0
	echo "== wgsetup: $WGSETUP_PEERS peers, wgsetup setconf vs wg setconf $(wg --version 2>/dev/null | cut -d ' ' -f 2) =="
	if [ "$(id -u)" != 0 ]; then
		echo "wgsetup: needs root (network namespaces, wireguard-go)"
		return 1
	fi
	for t in wg wireguard-go /usr/bin/python3; do
		command -v "$t" >/dev/null ||
			{ echo "wgsetup: $t missing (tests/deps.d/wgsetup)"; return 1; }
	done
	[ -x "$WGSETUP" ] || { echo "wgsetup: $WGSETUP is missing (not built yet?)"; return 1; }
	bench_wgsetup_userspace || rc=1
	if [ "$WGSETUP_BENCH_KERNEL" = 1 ]; then
		bench_wgsetup_kernel || rc=1
	fi
	return "$rc"
}
