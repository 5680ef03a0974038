#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch --node escalating to the birthday probe (lib/birthday):
#
#   h-eim1 (alice) --[eim1]--+  EIM, address-and-port-dependent filtering
#                            +-- inet --- relay (derpcat -l, TLS, STUN)
#   h-edm1 (carol) --[edm1]--+  EDM: a random port per destination
#                                pub: a second STUN server (stunq -l)
#
# Plain punching cannot open this pair: carol's packets come from a mapping
# alice's filter never sent to. With `birthday on` the two agree on roles
# over the relay (carol hard, alice easy, each from its own STUN verdict:
# two servers, so each sees how its NAT maps) and probe at an accelerated
# rate (mesh.conf birthday-ports 512, birthday-count 4096, birthday-rate
# 1000: a miss about once in 10^14). "Direct" is judged by the routers'
# conntrack and the relay's counters, never by punch's word. Interface
# names are this file's own (es: wireguard-go's sockets are shared).

load helpers
load wgsetup-helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkes$$ IFP=es$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	wg_path_setup
	wg_keys a c
	local d=$BATS_FILE_TMPDIR
	lab_relay_start
	# a second STUN server, so each node sees whether its mapping varies
	"$LAB" exec pub "$MK_BIN/stunq" -l "$PUB_IP:3478" >"$d/stun.log" 2>&1 &
	echo $! >"$d/stun.pid"
	mesh_file "$d/mesh-on.conf" "option birthday on"
	mesh_file "$d/mesh-off.conf" "birthday off"
	export ON=$d/mesh-on.conf OFF=$d/mesh-off.conf
}

# mesh_file PATH LINE: the pair, the relay, both STUN servers, the
# accelerated probe, and LINE (the birthday option as written)
mesh_file() {
	{
		echo "domain mesh.test"
		echo "relay https://$RELAY_IP $PIN"
		echo "stun $RELAY_IP:3478"
		echo "stun $PUB_IP:3478"
		echo "node alice $(cat "$KEYS/a.pub") 100.64.0.1"
		echo "node carol $(cat "$KEYS/c.pub") 100.64.0.3"
		echo "$2"
		echo "option birthday-ports 512"
		echo "option birthday-count 4096"
		echo "option birthday-rate 1000"
	} >"$1"
}

HOSTS="h-eim1 h-edm1"

teardown_file() {
	local h p
	for h in $HOSTS; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
	wg_cleanup "$IFP"
	rm -f /var/lib/meshkit/punch-"$IFP"?.port
	rmdir /var/lib/meshkit /run/meshkit 2>/dev/null || true
	p=$(cat "$BATS_FILE_TMPDIR/stun.pid" 2>/dev/null) &&
		{ kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
	lab_relay_stop
	"$LAB" down
}

teardown() {
	bg_stop_all
	local h
	for h in $HOSTS; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
	"$LAB" exec eim1 nft delete table inet mkcut 2>/dev/null || true
	# the next test's flows start afresh
	"$LAB" exec eim1 conntrack -F 2>/dev/null || true
	"$LAB" exec edm1 conntrack -F 2>/dev/null || true
}

ifc() {
	case $1 in
	h-eim1) echo "${IFP}a" ;;
	h-edm1) echo "${IFP}c" ;;
	esac
}

key_of() {
	case $1 in
	h-eim1) echo a ;;
	h-edm1) echo c ;;
	esac
}

# node HOST MESH [OPTION...]: WireGuard up from the mesh file, then punch
# --node on it with the options
node() {
	local h=$1 m=$2 k
	shift 2
	k=$(key_of "$h")
	"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"$(ifc "$h")" --mesh "$m" --key "$KEYS/$k.key"
	bg_start "punch-$h" "$LAB" exec "$h" "$MK_BIN/punch" -v --node "$m" \
		-k "$KEYS/$k.key" --wg "$(ifc "$h")" "$@"
}

pings() {
	"$LAB" exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1
}

# traffic: alice pings carol through the tunnel twice a second until the
# test ends (a pair without traffic is never escalated)
traffic() {
	bg_start traffic "$LAB" exec h-eim1 ping -q -i 0.5 -W 1 100.64.0.3
}

key_re() { sed 's/[+/]/./g' "$KEYS/$1.pub"; }

# relay_packets: how many packets the relay has received in all (its
# SIGUSR1 report)
relay_packets() {
	local p n
	p=$(cat "$BATS_FILE_TMPDIR/relay.pid")
	n=$(grep -c 'packets in' "$BATS_FILE_TMPDIR/relay.log")
	kill -USR1 "$p"
	wait_for 5 '[ "$(grep -c "packets in" "$BATS_FILE_TMPDIR/relay.log")" -gt "$n" ]'
	sed -n 's/.*packets in \([0-9]*\).*/\1/p' "$BATS_FILE_TMPDIR/relay.log" | tail -n 1
}

# relay_quiet: 20 pings through the tunnel, none of their 40 WireGuard
# packets through the relay (disco may use it: allow a few)
relay_quiet() {
	local n0 n1
	n0=$(relay_packets)
	"$LAB" exec h-eim1 ping -c 20 -i 0.05 -W 1 100.64.0.3 >/dev/null
	n1=$(relay_packets)
	[ $((n1 - n0)) -le 4 ] || { echo "the relay carried $((n1 - n0)) packets" >&2; false; }
}

# both_direct: each node announced the other's router as its direct path
both_direct() {
	wait_log punch-h-eim1 "^$(key_re c) direct $EDM1_WAN:[0-9]+ [0-9.]+$" 90
	wait_log punch-h-edm1 "^$(key_re a) direct $EIM1_WAN:[0-9]+ [0-9.]+$" 20
}

@test "EIM (filtering) <-> EDM, birthday on: the probe opens a direct path the tunnel then takes" {
	node h-edm1 "$ON"
	node h-eim1 "$ON"
	wait_for 30 pings h-eim1 100.64.0.3
	traffic
	both_direct
	# the roles each side took from its own NAT
	grep -q 'birthday: starting as the easy side' "$BATS_TEST_TMPDIR/punch-h-eim1.log"
	grep -q 'birthday: starting as the hard side' "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	grep -q 'birthday: won: local port' "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	# the routers saw packets cross both ways between the public addresses
	"$LAB" exec h-eim1 ping -c 3 -i 0.2 -W 1 100.64.0.3 >/dev/null
	replied eim1 "$EIM1_WAN" "$EDM1_WAN"
	replied edm1 "$EDM1_WAN" "$EIM1_WAN"
	relay_quiet
	# punch status says direct, through the winning socket
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)"
	assert_success
	assert_line --regexp "^carol +[^ ]+ direct $EDM1_WAN:[0-9]+ .* birthday port [0-9]+\$"
	run --separate-stderr "$LAB" exec h-edm1 "$MK_BIN/punch" status -j -i "$(ifc h-edm1)"
	"$PY" -c 'import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
alice = [r for r in rows if r["name"] == "alice"][0]
assert alice["path"] == "direct" and alice["birthday"] == "socket", alice
assert alice["local_nat"] == "EDM" and alice["tx_direct"] >= 20, alice' "$output"
	# the hard side kept one socket of its 512: the losers closed at once
	pid=$(bg_pid punch-h-edm1)
	n=$(ls /proc/"$pid"/fd | wc -l)
	[ "$n" -lt 40 ] || { ls -l /proc/"$pid"/fd >&2; false; }
}

@test "birthday off: the pair stays on the relay and carries traffic" {
	node h-edm1 "$OFF"
	node h-eim1 "$OFF"
	wait_for 30 pings h-eim1 100.64.0.3
	traffic
	# the point where a run would start, passed on both sides
	wait_log punch-h-eim1 'rounds of punching; birthday is off' 60
	wait_log punch-h-edm1 'rounds of punching; birthday is off' 20
	"$LAB" exec h-eim1 ping -c 5 -i 0.2 -W 2 100.64.0.3 >/dev/null
	run ! grep -Eq "^$(key_re c) direct " "$BATS_TEST_TMPDIR/punch-h-eim1.log"
	run ! grep -Eq "^$(key_re a) direct " "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	run ! grep -q 'birthday: starting' "$BATS_TEST_TMPDIR/punch-h-eim1.log"
	run ! grep -q 'birthday: starting' "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	run ! replied eim1 "$EIM1_WAN" "$EDM1_WAN"
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)"
	assert_line --regexp '^carol +[^ ]+ relay https://'
}

@test "--no-birthday on one node overrides birthday on: its peer's hellos go unanswered, the relay carries the pair" {
	node h-edm1 "$ON" --no-birthday
	node h-eim1 "$ON"
	wait_for 30 pings h-eim1 100.64.0.3
	traffic
	# alice (on) starts as the easy side; carol (off here) ignores her
	wait_log punch-h-eim1 'birthday: starting as the easy side' 60
	wait_log punch-h-edm1 'birthday hello ignored: birthday is off here' 20
	wait_log punch-h-eim1 'no hello from the peer' 30
	"$LAB" exec h-eim1 ping -c 5 -i 0.2 -W 2 100.64.0.3 >/dev/null
	run ! grep -Eq "^$(key_re c) direct " "$BATS_TEST_TMPDIR/punch-h-eim1.log"
	run ! grep -Eq "^$(key_re a) direct " "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	run ! grep -q 'birthday: starting' "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	run ! replied eim1 "$EIM1_WAN" "$EDM1_WAN"
	run --separate-stderr "$LAB" exec h-edm1 "$MK_BIN/punch" status -j -i "$(ifc h-edm1)"
	"$PY" -c 'import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
alice = [r for r in rows if r["name"] == "alice"][0]
assert alice["path"] == "relay" and alice["birthday"] == "off", alice
assert alice["tx_relay"] >= 5, alice' "$output"
}

@test "the winning socket's path, cut, falls back to the relay; the pair keeps answering" {
	node h-edm1 "$ON"
	node h-eim1 "$ON"
	wait_for 30 pings h-eim1 100.64.0.3
	traffic
	both_direct
	port=$(sed -n 's/.*birthday: won: local port \([0-9]*\).*/\1/p' \
		"$BATS_TEST_TMPDIR/punch-h-eim1.log" | head -n 1)
	[ -n "$port" ]
	pid=$(bg_pid punch-h-eim1)
	out=$("$LAB" exec h-eim1 ss -unap "sport = :$port")
	[[ $out == *"pid=$pid,"* ]] || { echo "$out" >&2; false; }
	# the router drops UDP between the two public addresses
	"$LAB" exec eim1 nft -f - <<EOF
table inet mkcut {
	chain cut {
		type filter hook forward priority -10;
		ip daddr $EDM1_WAN meta l4proto udp drop
		ip saddr $EDM1_WAN meta l4proto udp drop
	}
}
EOF
	# 26 pings in 13 s: at most 10 s of them lost, the last ones answered
	run "$LAB" exec h-eim1 ping -c 26 -i 0.5 -W 1 100.64.0.3
	got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$output")
	[ "$got" -ge 6 ] || { echo "$output" >&2; false; }
	grep -Eq 'icmp_seq=(25|26) ' <<<"$output"
	# announced as back on the relay, after the direct path
	grep -A 1000 " direct $EDM1_WAN:" "$BATS_TEST_TMPDIR/punch-h-eim1.log" |
		grep -Eq "^$(key_re c) relay https://$RELAY_IP"
	# and the socket that carried it is gone
	wait_log punch-h-eim1 "birthday socket \\(local port $port\\) closed" 10
	out=$("$LAB" exec h-eim1 ss -unap "sport = :$port")
	[[ $out != *"pid=$pid,"* ]] || { echo "$out" >&2; false; }
}
