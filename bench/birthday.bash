# SPDX-License-Identifier: MIT
# bench/run section: birthday in the NAT lab (sourced by bench/run).
#
#   The success rate of short birthday runs between h-edm1 (the hard side,
#   behind an endpoint-dependent router) and h-eim1 (the easy side, behind
#   an endpoint-independent one), at three probe counts, beside the
#   theoretical probability P = 1 - (1 - N/S)^k from `birthday table`, and
#   the 95 % interval a fair coin of that P would give over the trials
#   (a binomial's normal approximation). Few ports (BDAY_PORTS, 64) keep P
#   well inside (0, 1), where a measurement can disagree with it. Addresses
#   by hand (--peer-addr), no relay: a trial is the probing alone. Both
#   routers' conntrack is flushed between trials, so no mapping or filter
#   entry of one trial helps the next.
#
#   BIRTHDAY [bin/birthday]  BDAY_TRIALS [50]  BDAY_PORTS [64]
#   BDAY_COUNTS ["256 700 2048"]  BDAY_RATE [2000]

BIRTHDAY=${BIRTHDAY:-bin/birthday}
BDAY_TRIALS=${BDAY_TRIALS:-50}
BDAY_PORTS=${BDAY_PORTS:-64}
BDAY_COUNTS=${BDAY_COUNTS:-256 700 2048}
BDAY_RATE=${BDAY_RATE:-2000}

# bday_trial COUNT: one run; exit 0 when it found a path
bday_trial() {
	local count=$1 d=$TMP/birthday ph rc=0
	"$BB_LAB" exec eim1 conntrack -F >/dev/null 2>&1 || true
	"$BB_LAB" exec edm1 conntrack -F >/dev/null 2>&1 || true
	"$BB_LAB" exec h-edm1 timeout 60 "$ROOT/$BIRTHDAY" hard -q -k "$d/b.key" \
		--ports "$BDAY_PORTS" --count "$count" --rate "$BDAY_RATE" --force \
		--peer-addr "$EIM1_WAN:40000" "$(cat "$d/a.pub")" >/dev/null 2>&1 &
	ph=$!
	# the hard side's mappings first (its pings leave at once)
	sleep 0.3
	"$BB_LAB" exec h-eim1 timeout 60 "$ROOT/$BIRTHDAY" easy -q -k "$d/a.key" \
		-p 40000 --count "$count" --rate "$BDAY_RATE" --force \
		--peer-addr "$EDM1_WAN" "$(cat "$d/b.pub")" >>"$d/hits" 2>/dev/null || rc=$?
	# a hard side that won is done; one that did not would hold its
	# mappings for the easy side's whole count: end it
	stop_pid "$ph"
	return "$rc"
}

birthday_bench_body() {
	local d=$TMP/birthday count n won p
	mkdir -p "$d"
	export LAB_PREFIX=mkbb$$
	eval "$("$BB_LAB" up)"
	export $("$BB_LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	(umask 077
	 for n in a b; do
		"$ROOT/bin/wgsetup" genkey >"$d/$n.key"
		"$ROOT/bin/wgsetup" pubkey <"$d/$n.key" >"$d/$n.pub"
	 done)
	echo "success over $BDAY_TRIALS trials each, EDM (hard, $BDAY_PORTS ports) <- EIM (easy), $BDAY_RATE probes/s"
	printf '  %-7s %-10s %-10s %s\n' probes measured theory "95 % band for the trials"
	for count in $BDAY_COUNTS; do
		won=0
		for ((n = 0; n < BDAY_TRIALS; n++)); do
			bday_trial "$count" && won=$((won + 1))
		done
		# the formula birthday table prints, at this count
		p=$(python3 -c 'import sys
print("%.6f" % (1 - (1 - int(sys.argv[1]) / 64512) ** int(sys.argv[2])))' \
			"$BDAY_PORTS" "$count")
		python3 -c 'import math, sys
won, n, p = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sd = math.sqrt(p * (1 - p) / n)
lo, hi = max(0, p - 1.96 * sd), min(1, p + 1.96 * sd)
inside = "inside" if lo <= won / n <= hi else "OUTSIDE"
print("  %-7s %5.1f %%    %5.1f %%    %.1f-%.1f %% (%s)" % (sys.argv[4], 100 * won / n, 100 * p, 100 * lo, 100 * hi, inside))' \
			"$won" "$BDAY_TRIALS" "$p" "$count"
	done
}

birthday_bench_cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		stop_pid "$p"
	done
	"$BB_LAB" down >/dev/null 2>&1 || true
}

bench_birthday() {
	echo "== birthday (the NAT lab)"
	BB_LAB=$ROOT/tests/lab/lab.sh
	(
		trap birthday_bench_cleanup EXIT
		birthday_bench_body
	)
}
