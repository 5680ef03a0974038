#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch on loopback: two nodes through a local relay, and an independent
# disco sender (tests/tools/discopeer.py, PyNaCl) that tries to fool it.
# Every punch here runs with --no-portmap: outside the lab, a port-mapping
# probe would reach the host's real gateway.

load helpers

DISCOPEER="$PY $TOP/tests/tools/discopeer.py"

setup_file() {
	export KEYS=$BATS_FILE_TMPDIR/keys
	mkdir -p "$KEYS"
	"$TOP/tests/tools/derpcat-keygen" "$KEYS" a b c
}

teardown() {
	bg_stop_all
}

pub() { cat "$KEYS/$1.pub"; }

# start_relay: derpcat -l on 127.0.0.1 (plain HTTP), no STUN; sets RELAY.
start_relay() {
	bg_start relay derpcat -l 127.0.0.1:0 --http --stun-port 0
	wait_log relay 'listening on' 20
	RELAY=http://127.0.0.1:$(listen_port relay)
}

@test "--help is the usage on stdout, exit 0; --version" {
	run -0 punch --help
	assert_line --index 0 --partial 'usage: punch -k keyfile'
	run -0 punch --version
	assert_output --regexp '^punch [0-9]'
}

@test "two nodes on one host: a direct path, printed as LOCALPORT REMOTE_IP:PORT RTT_MS" {
	start_relay
	bg_start b punch --no-portmap -v -k "$KEYS/b.key" --relay "$RELAY" "$(pub a)"
	run -0 --separate-stderr timeout 30 punch --no-portmap -k "$KEYS/a.key" --relay "$RELAY" "$(pub b)"
	assert_output --regexp '^[0-9]+ [^ ]+:[0-9]+ [0-9]+\.[0-9]{3}$'
	wait "$(bg_pid b)"
	grep -Eq '^[0-9]+ [^ ]+:[0-9]+ [0-9.]+$' "$BATS_TEST_TMPDIR/b.log"
}

@test "--json: the same result as one object" {
	start_relay
	bg_start b punch --no-portmap -k "$KEYS/b.key" --relay "$RELAY" "$(pub a)"
	run -0 --separate-stderr timeout 30 punch --no-portmap -j -k "$KEYS/a.key" --relay "$RELAY" "$(pub b)"
	"$PY" -c 'import json, sys
r = json.loads(sys.argv[1])
assert set(r) == {"local_port", "remote", "rtt_ms"}, r
assert isinstance(r["local_port"], int) and r["rtt_ms"] >= 0' "$output"
}

@test "forged, replayed and misdirected disco never make a path" {
	start_relay
	# a waits for b, which never comes to the relay; the attacker
	# holds c's key, and for the right-key cases b's own
	bg_start a punch --no-portmap -vv -k "$KEYS/a.key" --relay "$RELAY" -w 4 -4 "$(pub b)"
	wait_log a 'UDP port'
	port=$(sed -n 's/.*UDP port \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/a.log")
	dst=127.0.0.1:$port
	# a ping claiming to be b, sealed with c's key: does not open
	$DISCOPEER "$KEYS/c.key" "$(pub a)" "$dst" forged-ping "$(pub b)"
	# c's own ping: not the peer's key
	$DISCOPEER "$KEYS/c.key" "$(pub a)" "$dst" ping
	# b's key, a pong for a TxID a never sent
	$DISCOPEER "$KEYS/b.key" "$(pub a)" "$dst" pong 0102030405060708090a0b0c "$dst"
	# b's key, a call-me-maybe over UDP instead of the relay
	$DISCOPEER "$KEYS/b.key" "$(pub a)" "$dst" cmm 127.0.0.1:9
	# b's key, one ping sent twice with the same nonce
	$DISCOPEER "$KEYS/b.key" "$(pub a)" "$dst" ping --count 2 \
		--nonce 000102030405060708090a0b0c0d0e0f1011121314151617
	wait_log a 'replayed disco message: dropped'
	rc=0
	wait "$(bg_pid a)" || rc=$?
	# the one genuine ping came from a socket that is gone: no path
	assert_equal "$rc" 1
	log=$(bg_log a)
	echo "$log" >&2
	[[ $log == *'disco: does not open: dropped'* ]]
	[[ $log == *'disco from a key that is not a peer: dropped'* ]]
	[[ $log == *'pong with a TxID we never sent'* ]]
	[[ $log == *'call-me-maybe over UDP from 127.0.0.1:'*': dropped'* ]]
	[ "$(grep -c 'pong to 127.0.0.1' <<<"$log")" = 1 ]
	[[ $log == *'no direct path opened'* ]]
	run grep -E '^[0-9]+ [^ ]+:[0-9]+ ' <<<"$log"
	assert_failure
}

@test "a waiting punch uses no CPU" {
	start_relay
	bg_start a punch --no-portmap -v -k "$KEYS/a.key" --relay "$RELAY" -w 30 "$(pub c)"
	wait_log a 'on the relay' 10
	pid=$(bg_pid a)
	t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	sleep 3
	t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	# clock ticks (1/100 s): pings and call-me-maybe every second cost
	# well under 1 % of a core
	[ $((t1 - t0)) -le 3 ] || { echo "used $((t1 - t0)) ticks in 3 s" >&2; false; }
}

@test "--fd and --endpoint: an inherited socket and a peer already found, no relay needed" {
	start_relay
	port=$("$PY" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	# b listens on a known port through the relay; a has no relay at all
	bg_start b punch --no-portmap -v -k "$KEYS/b.key" --relay "$RELAY" -p "$port" -4 "$(pub a)"
	wait_log b 'UDP port'
	# a's socket is made (and bound) by its parent, as birthday hands one on
	run -0 --separate-stderr timeout 30 "$PY" -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
print(s.getsockname()[1], file=sys.stderr)
os.execvp(sys.argv[1], sys.argv[1:])' punch --no-portmap -k "$KEYS/a.key" --fd 3 \
		--endpoint "127.0.0.1:$port" "$(pub b)"
	# a's line names the inherited socket's port and b's endpoint
	assert_output --regexp "^$stderr 127\.0\.0\.1:$port [0-9.]+$"
	wait "$(bg_pid b)"
}

@test "--fd: a descriptor that is not a UDP socket is refused" {
	run -3 --separate-stderr punch --no-portmap -k "$KEYS/a.key" --fd 0 --endpoint 127.0.0.1:9 "$(pub b)" </dev/null
	[[ $stderr == *'--fd 0'* ]]
	run -2 --separate-stderr punch --no-portmap -k "$KEYS/a.key" --endpoint 127.0.0.1:9 "$(pub b)"
	[[ $stderr == *'--endpoint needs --fd'* ]]
}
