#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch's one-shot mode in the NAT lab: two hosts behind their routers meet
# on a DERP relay (derpcat -l, TLS, pinned) on the fake internet's relay
# host, and punch a direct UDP path. "Direct" is judged by the routers
# (conntrack), never by punch's word.

load helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkp$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	local d=$BATS_FILE_TMPDIR
	export KEYS=$d/keys
	mkdir -p "$KEYS"
	"$TOP/tests/tools/derpcat-keygen" "$KEYS" a b c
	lab_relay_start
	# UPnP-IGD, NAT-PMP and PCP on the upnp router
	"$LAB" miniupnpd start
	# a second STUN server, so a node can see its mapping vary
	"$LAB" exec pub "$MK_BIN/stunq" -l "$PUB_IP:3478" >"$d/stun.log" 2>&1 &
	echo $! >"$d/stun.pid"
}

teardown_file() {
	local p
	lab_relay_stop
	p=$(cat "$BATS_FILE_TMPDIR/stun.pid" 2>/dev/null) &&
		{ kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
	"$LAB" down
}

teardown() {
	bg_stop_all
}

pub() { cat "$KEYS/$1.pub"; }

# pn NAME HOST KEY PEER [OPTION...] [-- CMD...]: punch in a lab host, in
# the background; its stdout in NAME.out, stderr in NAME.log.
pn() {
	local name=$1 host=$2 key=$3 peer=$4 opts=() cmd=()
	shift 4
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	cmd=("$@")
	"$LAB" exec "$host" timeout 60 "$MK_BIN/punch" -v -k "$KEYS/$key.key" \
		--pin "$PIN" --relay "$RELAY" "${opts[@]}" "$(pub "$peer")" \
		"${cmd[@]}" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.log" &
	echo $! >"$BATS_TEST_TMPDIR/$name.pid"
	echo "$! $name" >>"$BATS_TEST_TMPDIR/.pids"
}

# pn_rc NAME EXPECTED: wait for it; its exit status must be EXPECTED (its
# stderr is shown when not)
pn_rc() {
	local rc=0
	wait "$(cat "$BATS_TEST_TMPDIR/$1.pid")" || rc=$?
	[ "$rc" = "$2" ] || {
		echo "$1 exited $rc, not $2:" >&2
		cat "$BATS_TEST_TMPDIR/$1.log" >&2
		return 1
	}
}

@test "EIM <-> EIM: direct, between the two routers' public addresses" {
	pn a h-eim1 a b
	pn b h-eim2 b a
	pn_rc a 0
	pn_rc b 0
	# LOCALPORT REMOTE_IP:PORT RTT_MS, the peer seen at its router
	run cat "$BATS_TEST_TMPDIR/a.out"
	assert_output --regexp "^[0-9]+ $EIM2_WAN:[0-9]+ [0-9]+\.[0-9]{3}$"
	run cat "$BATS_TEST_TMPDIR/b.out"
	assert_output --regexp "^[0-9]+ $EIM1_WAN:[0-9]+ [0-9]+\.[0-9]{3}$"
	replied eim1 "$EIM1_WAN" "$EIM2_WAN"
	replied eim2 "$EIM2_WAN" "$EIM1_WAN"
}

@test "full cone <-> EDM: direct through the full-cone router" {
	pn a h-full a b
	pn b h-edm1 b a
	pn_rc a 0
	pn_rc b 0
	run cat "$BATS_TEST_TMPDIR/a.out"
	assert_output --regexp "^[0-9]+ $EDM1_WAN:[0-9]+ [0-9.]+$"
	replied edm1 "$EDM1_WAN" "$FULL_WAN"
}

@test "double NAT (behind a carrier-grade NAT) <-> EIM: direct through both" {
	pn a h-dbl a b
	pn b h-eim1 b a
	pn_rc a 0
	pn_rc b 0
	run cat "$BATS_TEST_TMPDIR/b.out"
	assert_output --regexp "^[0-9]+ $CGNAT_WAN:[0-9]+ [0-9.]+$"
	replied eim1 "$EIM1_WAN" "$CGNAT_WAN"
}

@test "behind stateful IPv6 firewalls (no NAT66), -6: direct between the hosts' global addresses" {
	pn a h-ds1 a b -6
	pn b h-ds2 b a -6
	pn_rc a 0
	pn_rc b 0
	run cat "$BATS_TEST_TMPDIR/a.out"
	assert_output --regexp "^[0-9]+ \[$H_DS2_IP6\]:[0-9]+ [0-9.]+$"
	run cat "$BATS_TEST_TMPDIR/b.out"
	assert_output --regexp "^[0-9]+ \[$H_DS1_IP6\]:[0-9]+ [0-9.]+$"
	replied ds1 "$H_DS1_IP6" "$H_DS2_IP6"
	replied ds2 "$H_DS2_IP6" "$H_DS1_IP6"
}

@test "two hosts behind one router: direct over their LAN addresses (it does not hairpin)" {
	pn a h-eim1 a b
	pn b h-eim1b b a
	pn_rc a 0
	pn_rc b 0
	run cat "$BATS_TEST_TMPDIR/a.out"
	assert_output --regexp "^[0-9]+ $H_EIM1B_IP:[0-9]+ [0-9.]+$"
	run cat "$BATS_TEST_TMPDIR/b.out"
	assert_output --regexp "^[0-9]+ $H_EIM1_IP:[0-9]+ [0-9.]+$"
	run ! grep -F -e "src=$H_EIM1_IP dst=$H_EIM1B_IP " -e "src=$H_EIM1B_IP dst=$H_EIM1_IP " \
		<<<"$("$LAB" exec eim1 conntrack -L 2>/dev/null)"
}

@test "-c mesh.conf: the relay, its pin and the peer by node name" {
	m=$BATS_TEST_TMPDIR/mesh.conf
	printf 'relay %s %s\nnode alice %s 100.64.0.1\nnode bob %s 100.64.0.2\n' \
		"$RELAY" "$PIN" "$(pub a)" "$(pub b)" >"$m"
	"$LAB" exec h-eim1 timeout 60 "$MK_BIN/punch" -k "$KEYS/a.key" -c "$m" bob \
		>"$BATS_TEST_TMPDIR/a.out" 2>"$BATS_TEST_TMPDIR/a.log" &
	pa=$!
	run -0 --separate-stderr "$LAB" exec h-eim2 timeout 60 "$MK_BIN/punch" \
		-k "$KEYS/b.key" -c "$m" ALICE
	assert_output --regexp "^[0-9]+ $EIM1_WAN:[0-9]+ [0-9.]+$"
	wait "$pa"
	grep -Eq "^[0-9]+ $EIM2_WAN:[0-9]+ " "$BATS_TEST_TMPDIR/a.out"
}

@test "EDM <-> EDM: no direct path, exit 1 with the reason; the relay carried the rendezvous" {
	pn a h-edm1 a b -w 6 --stun "$RELAY_IP:3478" --stun "$PUB_IP:3478"
	pn b h-edm2 b a -w 6 --stun "$RELAY_IP:3478" --stun "$PUB_IP:3478"
	pn_rc a 1
	pn_rc b 1
	grep -q ': call-me-maybe (' "$BATS_TEST_TMPDIR/a.log"
	grep -q 'no direct path opened' "$BATS_TEST_TMPDIR/a.log"
	grep -q 'endpoint-dependent' "$BATS_TEST_TMPDIR/a.log"
	[ ! -s "$BATS_TEST_TMPDIR/a.out" ]
	run ! replied edm1 "$EDM1_WAN" "$EDM2_WAN"
}

@test "a peer that never appears: exit 3 after -w, saying so" {
	pn a h-eim1 a c -w 2
	pn_rc a 3
	grep -q 'peer never appeared on the relay' "$BATS_TEST_TMPDIR/a.log"
}

@test "an unreachable relay: exit 3 at once with the reason" {
	run -3 --separate-stderr "$LAB" exec h-eim1 timeout 30 "$MK_BIN/punch" \
		-k "$KEYS/a.key" --relay "https://$RELAY_IP:8443" "$(pub b)"
	[[ $stderr == *"https://$RELAY_IP:8443"*refused* ]] || {
		echo "$stderr" >&2; false; }
}

@test "-- CMD: the punched socket, connected, is descriptor 3 of the command" {
	# a sends a line every 0.2 s (its first may reach b's punch while it
	# still lingers, which drops what is not disco); b reads one
	pn a h-eim1 a b -- sh -c 'for i in $(seq 50); do echo hello >&3; sleep 0.2; done'
	pn b h-eim2 b a -- "$PY" -c '
import os, socket
s = socket.socket(fileno=int(os.environ["MESHKIT_FD"]))
s.settimeout(10)
print(s.recv(100).decode().strip(), os.environ["MESHKIT_REMOTE"], s.getpeername()[0])'
	pn_rc b 0
	run cat "$BATS_TEST_TMPDIR/b.out"
	assert_output --regexp "^hello $EIM1_WAN:[0-9]+ $EIM1_WAN$"
}

@test "bad input: unknown option, no key, a peer that is not a key, our own key" {
	run -2 --separate-stderr punch --bogus x
	run -2 --separate-stderr punch --relay "$RELAY" "$(pub a)"
	[[ $stderr == *'no key'* ]]
	run -2 --separate-stderr punch -k "$KEYS/a.key" --relay "$RELAY" not-a-key
	[[ $stderr == *'not-a-key: not a key'* ]]
	run -2 --separate-stderr punch -k "$KEYS/a.key" --relay "$RELAY" "$(pub a)"
	[[ $stderr == *'own key'* ]]
	run -2 --separate-stderr punch -k /nonexistent --relay "$RELAY" "$(pub b)"
	[[ $stderr == *'/nonexistent'* ]]
}

@test "EDM <-> the miniupnpd router's host: direct through its port mapping, deleted on exit" {
	# without the mapping the pair cannot open: EDM against address-
	# and-port filtering
	pn a h-upnp a b --no-portmap -w 4
	pn b h-edm1 b a --no-portmap -w 4
	pn_rc a 1
	pn_rc b 1
	pn a h-upnp a b
	pn b h-edm1 b a
	pn_rc a 0
	pn_rc b 0
	grep -Eq "port mapping $UPNP_WAN:[0-9]+ by (PCP|NAT-PMP|UPnP) deleted" "$BATS_TEST_TMPDIR/a.log" ||
		{ cat "$BATS_TEST_TMPDIR/a.log" >&2; false; }
	run cat "$BATS_TEST_TMPDIR/b.out"
	assert_output --regexp "^[0-9]+ $UPNP_WAN:[0-9]+ [0-9.]+$"
	replied edm1 "$EDM1_WAN" "$UPNP_WAN"
	# punch deleted its mapping as it left
	run grep -E "^UDP:[0-9]+:$H_UPNP_IP:" "$UPNP_LEASE_FILE"
	assert_failure
}
