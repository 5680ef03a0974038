#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# stunq and its responder over loopback: no namespaces needed.

load helpers

teardown() {
	bg_stop_all
}

@test "--help prints the usage to stdout and exits 0; --version" {
	run --separate-stderr stunq --help
	assert_success
	assert_line --index 0 --partial 'usage: stunq [-46jqv]'
	run stunq --version
	assert_success
	assert_output --regexp '^stunq [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2 with one line naming the problem" {
	run -2 --separate-stderr stunq -p 70000 127.0.0.1
	assert_equal "${stderr_lines[0]}" 'stunq: bad port: 70000'
	run -2 --separate-stderr stunq -t abc 127.0.0.1
	assert_equal "${stderr_lines[0]}" 'stunq: bad timeout: abc'
	run -2 stunq --no-such-option
	run -2 --separate-stderr stunq 127.0.0.1:99999
	assert_equal "${stderr_lines[0]}" 'stunq: bad server: 127.0.0.1:99999'
	run -2 --separate-stderr stunq -l 127.0.0.1 --json
	assert_equal "${stderr_lines[0]}" 'stunq: client options given with -l'
	run -2 --separate-stderr stunq --alt 127.0.0.2 127.0.0.1
	assert_equal "${stderr_lines[0]}" 'stunq: --alt and --alt-port need -l'
	run -2 --separate-stderr stunq --fd 99 127.0.0.1
	assert_equal "${stderr_lines[0]}" 'stunq: --fd 99: descriptor is not open'
	run -2 --separate-stderr stunq --fd 0 127.0.0.1 </dev/null
	assert_equal "${stderr_lines[0]}" 'stunq: --fd 0: descriptor is not a socket'
}

@test "IPv4: the mapped address is the client's own socket on loopback" {
	start_responder srv 127.0.0.1:0
	run --separate-stderr stunq -p 40111 "127.0.0.1:$PORT"
	assert_success
	assert_output '127.0.0.1:40111'
}

@test "IPv6: [::1] answers with a bracketed address" {
	start_responder srv6 '[::1]:0'
	run --separate-stderr stunq -6 -p 40112 "[::1]:$PORT"
	assert_success
	assert_output '[::1]:40112'
}

@test "a dual-stack responder on [::] answers IPv4 clients with IPv4" {
	start_responder srvd '[::]:0'
	run --separate-stderr stunq -p 40113 "127.0.0.1:$PORT"
	assert_success
	assert_output '127.0.0.1:40113'
}

@test "one socket, many servers: one line each, in argument order" {
	start_responder a 127.0.0.1:0; pa=$PORT
	start_responder b '[::1]:0'; pb=$PORT
	run --separate-stderr stunq -p 40114 "127.0.0.1:$pa" "[::1]:$pb" "127.0.0.1:$pa"
	assert_success
	assert_line --index 0 '127.0.0.1:40114'
	assert_line --index 1 '[::1]:40114'
	assert_line --index 2 '127.0.0.1:40114'
}

@test "a silent server keeps its line as '-' and is named on stderr" {
	start_responder a 127.0.0.1:0
	run --separate-stderr stunq -t 0.5 127.0.0.1:9 "127.0.0.1:$PORT"
	assert_success
	assert_equal "${lines[0]}" '-'
	assert_line --index 1 --regexp '^127\.0\.0\.1:[0-9]+$'
	[[ "$stderr" == *'127.0.0.1:9: no answer'* ]]
	# in JSON with the words natclass uses
	run --separate-stderr stunq -t 0.5 --json 127.0.0.1:9
	assert_output '{"server":"127.0.0.1:9","address":"127.0.0.1:9","local":"127.0.0.1:'"$(echo "$output" | sed -n 's/.*"local":"127.0.0.1:\([0-9]*\)".*/\1/p')"'","error":"no answer"}'
}

@test "no answer at all: exit 3 within the timeout" {
	t0=$(date +%s%3N)
	run -3 --separate-stderr stunq -t 1 127.0.0.1:9
	assert_equal "$output" '-'
	# -t 1, not the default 3 s (the margin is for a loaded machine)
	[ $(($(date +%s%3N) - t0)) -lt 2500 ]
	[[ "$stderr" == *'no answer from any server'* ]]
}

@test "-t bounds the whole run, name lookups included; -q keeps the line that says why" {
	# A resolver that never answers made getaddrinfo block 5 s per name
	# (18 s for the built-in list); -t 1 must end the run by about 1 s.
	# The bound (2.5 s) is a margin for a loaded machine, not a speed test.
	run -3 --separate-stderr offline "$MK_BIN/stunq" -q -t 1 stun.example.net 127.0.0.1:9
	echo "took $(cat "$BATS_TEST_TMPDIR/elapsed") ms"
	[ "$(cat "$BATS_TEST_TMPDIR/elapsed")" -lt 2500 ]
	assert_output "$(printf -- '-\n-')"
	# -q: one line, and it says why
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$stderr" 'stunq: no answer from any server: 1 silent, 1 not resolved (name lookup timed out)'
	run -3 --separate-stderr offline "$MK_BIN/stunq" -t 1 --json stun.example.net
	assert_output --partial '"server":"stun.example.net","address":null,"local":null,'
	assert_output --partial '"error":"not resolved: name lookup timed out"'
	[[ "$stderr" == *'stun.example.net: name lookup timed out'* ]]
	# no arguments: the built-in servers, within the default 3 s (margin 2 s)
	run -3 --separate-stderr offline "$MK_BIN/stunq" -q
	echo "took $(cat "$BATS_TEST_TMPDIR/elapsed") ms"
	[ "$(cat "$BATS_TEST_TMPDIR/elapsed")" -lt 5000 ]
	assert_equal "$stderr" 'stunq: no answer from any server: 3 not resolved (name lookup timed out)'
}

@test "--rfc retransmission still answers at once" {
	start_responder srv 127.0.0.1:0
	run --separate-stderr stunq --rfc -t 2 -p 40115 "127.0.0.1:$PORT"
	assert_success
	assert_output '127.0.0.1:40115'
}

@test "--json carries server, address, rtt_ms, local, mapped, response_origin, other_address, software" {
	start_responder srv 127.0.0.1:0
	# -4: localhost may name ::1 first (a fresh Debian's /etc/hosts does)
	run --separate-stderr stunq -4 --json -p 40116 "localhost:$PORT"
	assert_success
	echo "$output" | $PY -c '
import json, sys
o = json.loads(sys.stdin.read())
assert o["server"] == "localhost:'"$PORT"'", o
assert o["address"] == "127.0.0.1:'"$PORT"'", o
assert o["mapped"] == "127.0.0.1:40116", o
assert o["local"] == "127.0.0.1:40116", o
assert isinstance(o["rtt_ms"], float) and o["rtt_ms"] >= 0, o
for k in ("response_origin", "other_address", "software"):
    assert k in o and o[k] is None, (k, o)
'
}

@test "--fd uses an inherited socket and its port" {
	start_responder srv 127.0.0.1:0
	run --separate-stderr $PY -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 40117))
os.dup2(s.fileno(), 7)
os.execvp("stunq", ["stunq", "--fd", "7", sys.argv[1]])
' "127.0.0.1:$PORT"
	assert_success
	assert_output '127.0.0.1:40117'
}

@test "servers from STUNQ_SERVERS, then from mesh.conf stun lines" {
	start_responder a 127.0.0.1:0; pa=$PORT
	start_responder b 127.0.0.1:0; pb=$PORT
	STUNQ_SERVERS="127.0.0.1:$pa, 127.0.0.1:$pb" run --separate-stderr stunq -p 40118
	assert_success
	assert_equal "${#lines[@]}" 2
	printf 'stun 127.0.0.1:%s\n' "$pb" >"$BATS_TEST_TMPDIR/mesh.conf"
	run --separate-stderr stunq -c "$BATS_TEST_TMPDIR/mesh.conf" -p 40119
	assert_success
	assert_output '127.0.0.1:40119'
	printf 'stun 127.0.0.1:%s\nbogus line\n' "$pb" >"$BATS_TEST_TMPDIR/bad.conf"
	run -2 --separate-stderr stunq -c "$BATS_TEST_TMPDIR/bad.conf"
	[[ "$stderr" == *"bad.conf:2:"* ]]
}

@test "a reply from the wrong address or with the wrong transaction ID does not count" {
	bg_start fake1 $STUNPEER fake-server --bind 127.0.0.1:0 --mode wrong-source
	wait_log fake1 '^ready'
	p1=$(sed -n 's/^ready //p' "$BATS_TEST_TMPDIR/fake1.log")
	run -3 --separate-stderr stunq -v -v -t 0.5 "127.0.0.1:$p1"
	[[ "$stderr" == *'right transaction ID from the wrong address'* ]]
	bg_start fake2 $STUNPEER fake-server --bind 127.0.0.1:0 --mode wrong-txid
	wait_log fake2 '^ready'
	p2=$(sed -n 's/^ready //p' "$BATS_TEST_TMPDIR/fake2.log")
	run -3 --separate-stderr stunq -v -v -t 0.5 "127.0.0.1:$p2"
	[[ "$stderr" == *'unknown transaction ID'* ]]
	bg_start fake3 $STUNPEER fake-server --bind 127.0.0.1:0 --mode ok
	wait_log fake3 '^ready'
	p3=$(sed -n 's/^ready //p' "$BATS_TEST_TMPDIR/fake3.log")
	run --separate-stderr stunq -p 40120 "127.0.0.1:$p3"
	assert_success
	assert_output '127.0.0.1:40120'
}

@test "responder: RFC 3489 request (no cookie) gets MAPPED-ADDRESS" {
	start_responder srv 127.0.0.1:0
	req=$($STUNPEER request --no-cookie)
	run $STUNPEER ask 127.0.0.1 "$PORT" "$req"
	assert_success
	run $STUNPEER decode "$output"
	assert_output --regexp '^type=0x0101 len=12 mapped=127\.0\.0\.1:[0-9]+$'
}

@test "responder: FINGERPRINT is echoed only when the request had one" {
	start_responder srv 127.0.0.1:0
	run $STUNPEER ask 127.0.0.1 "$PORT" "$($STUNPEER request)"
	run $STUNPEER decode "$output"
	assert_output --regexp '^type=0x0101 len=12 xor-mapped=127\.0\.0\.1:[0-9]+$'
	run $STUNPEER ask 127.0.0.1 "$PORT" "$($STUNPEER request --fingerprint)"
	run $STUNPEER decode "$output"
	assert_output --regexp '^type=0x0101 len=20 xor-mapped=127\.0\.0\.1:[0-9]+ attr=0x8028:'
}

@test "responder: CHANGE-REQUEST without --alt and unknown attributes get 420" {
	start_responder srv 127.0.0.1:0
	run $STUNPEER ask 127.0.0.1 "$PORT" "$($STUNPEER request --change 6)"
	run $STUNPEER decode "$output"
	assert_output --partial 'type=0x0111'
	assert_output --partial 'error=420'
	assert_output --partial 'unknown=0x0003'
	run $STUNPEER ask 127.0.0.1 "$PORT" "$($STUNPEER request --attr 0x7777:01020304)"
	run $STUNPEER decode "$output"
	assert_output --partial 'error=420'
	assert_output --partial 'unknown=0x7777'
}

@test "responder: no answer, errors included, exceeds the amplification stunq(1) states" {
	# without --alt over IPv4 the page allows 1.6 times the request
	start_responder srv 127.0.0.1:0
	for req in "$($STUNPEER request --attr 0x7777:)" \
	    "$($STUNPEER request --change 6)" \
	    "$($STUNPEER request --attr 0x7777: --fingerprint)" \
	    "$($STUNPEER request)" "$($STUNPEER request --no-cookie)"; do
		run $STUNPEER ask 127.0.0.1 "$PORT" "$req"
		assert_success
		# hex: two digits a byte
		echo "request ${#req} answer ${#output} $($STUNPEER decode "$output")"
		[ $((${#output} * 10)) -le $((${#req} * 16)) ]
	done
	run $STUNPEER decode "$($STUNPEER ask 127.0.0.1 "$PORT" "$($STUNPEER request --attr 0x7777:)")"
	assert_output --partial 'error=420'
	assert_output --partial 'unknown=0x7777'
	# with --alt over IPv4: 2.8 times
	start_responder alt 127.0.0.1:0 --alt 127.0.0.2
	for req in "$($STUNPEER request)" "$($STUNPEER request --no-cookie)" \
	    "$($STUNPEER request --attr 0x7777:)" "$($STUNPEER request --change 6)"; do
		run $STUNPEER ask 127.0.0.1 "$PORT" "$req"
		assert_success
		echo "request ${#req} answer ${#output}"
		[ $((${#output} * 10)) -le $((${#req} * 28)) ]
	done
}

@test "responder -l ADDR:0 --alt: the alternate address listens on the primary's port; OTHER-ADDRESS is what is bound" {
	start_responder srv 127.0.0.1:0 --alt 127.0.0.2
	pp=$PORT
	ap=$(sed -n 's/.*alternate port \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/srv.log")
	[ -n "$ap" ]
	run --separate-stderr stunq --json "127.0.0.1:$pp"
	assert_success
	assert_output --partial "\"other_address\":\"127.0.0.2:$ap\""
	# every one of the four sockets answers, from itself
	for a in "127.0.0.1 $pp" "127.0.0.1 $ap" "127.0.0.2 $pp" "127.0.0.2 $ap"; do
		set -- $a
		run $STUNPEER ask "$1" "$2" "$($STUNPEER request)"
		assert_success
		run $STUNPEER decode "$output"
		assert_output --partial "response-origin=$1:$2"
	done
	# and a change-IP answer comes from the alternate address, primary port
	run $STUNPEER decode "$($STUNPEER ask 127.0.0.1 "$pp" "$($STUNPEER request --change 4)")"
	assert_output --partial "response-origin=127.0.0.2:$pp"
	assert_output --partial "other-address=127.0.0.2:$ap"
}

@test "responder: malformed, oversized and non-request packets are dropped with a log line; it keeps serving" {
	start_responder srv 127.0.0.1:0
	# header only claiming 8 bytes of attributes that are not there
	run -1 $STUNPEER ask 127.0.0.1 "$PORT" 000100082112a442000000000000000000000000 --timeout 0.3
	# a success response is not a request
	run -1 $STUNPEER ask 127.0.0.1 "$PORT" 0101000c2112a4420102030405060708090a0b0c002000080001a147e112a643 --timeout 0.3
	# 1504 bytes: larger than any request the responder accepts
	run -1 $STUNPEER ask 127.0.0.1 "$PORT" "000105c82112a442$(head -c 1496 /dev/zero | od -An -v -tx1 | tr -d ' \n')" --timeout 0.3
	# random garbage
	run -1 $STUNPEER ask 127.0.0.1 "$PORT" deadbeef --timeout 0.3
	run --separate-stderr stunq -p 40121 "127.0.0.1:$PORT"
	assert_success
	assert_output '127.0.0.1:40121'
	wait_log srv 'dropped packet from 127\.0\.0\.1:[0-9]+: '
	kill -USR1 "$(bg_pid srv)"
	wait_log srv 'received [0-9]+, answered 1, errors 0, dropped malformed [1-9]'
}

@test "responder --alt: OTHER-ADDRESS, RESPONSE-ORIGIN and CHANGE-REQUEST on four sockets" {
	start_responder srv 127.0.0.1:34901 --alt 127.0.0.2 --alt-port 34902
	run --separate-stderr stunq --json 127.0.0.1:34901
	assert_success
	assert_output --partial '"response_origin":"127.0.0.1:34901"'
	assert_output --partial '"other_address":"127.0.0.2:34902"'
	# change IP and port: the answer comes from 127.0.0.2:34902
	run $STUNPEER ask 127.0.0.1 34901 "$($STUNPEER request --change 6)"
	run $STUNPEER decode "$output"
	assert_output --partial 'response-origin=127.0.0.2:34902'
	run $STUNPEER ask 127.0.0.1 34901 "$($STUNPEER request --change 2)"
	run $STUNPEER decode "$output"
	assert_output --partial 'response-origin=127.0.0.1:34902'
	# RFC 3489 clients get SOURCE-ADDRESS and CHANGED-ADDRESS instead
	run $STUNPEER ask 127.0.0.2 34901 "$($STUNPEER request --no-cookie --change 4)"
	run $STUNPEER decode "$output"
	assert_output --regexp 'mapped=127\.0\.0\.1:[0-9]+ source=127\.0\.0\.1:34901 changed=127\.0\.0\.1:34902'
}

@test "responder: RESPONSE-PORT is honoured only in --alt mode, towards the requester only" {
	start_responder srv 127.0.0.1:34905 --alt 127.0.0.2 --alt-port 34906
	run --separate-stderr $PY -c '
import socket, struct, sys, os
sys.path.insert(0, sys.argv[1])
import stunpeer
target = socket.socket(); target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
target.bind(("127.0.0.1", 0)); target.settimeout(1)
asker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
txid = os.urandom(12)
msg = stunpeer.build(1, txid, [(0x0027, struct.pack("!HH", target.getsockname()[1], 0))])
asker.sendto(msg, ("127.0.0.1", 34905))
data, src = target.recvfrom(2048)
assert data[8:20] == txid, "answer did not go to the response port"
print(stunpeer.decode(data))
' "$TOP/tests/tools"
	assert_success
	assert_output --partial 'type=0x0101'
	start_responder plain 127.0.0.1:0
	run $STUNPEER ask 127.0.0.1 "$PORT" "$($STUNPEER request --attr 0x0027:1f900000)"
	run $STUNPEER decode "$output"
	assert_output --partial 'error=420'
	assert_output --partial 'unknown=0x0027'
}

@test "responder refuses a bad --alt and a busy port with one line" {
	run -2 --separate-stderr stunq -l 127.0.0.1:34903 --alt 127.0.0.1
	[[ "$stderr" == *'must differ'* ]]
	run -2 --separate-stderr stunq -l 0.0.0.0:34903 --alt 127.0.0.2
	[[ "$stderr" == *'two specific addresses'* ]]
	start_responder srv 127.0.0.1:0
	run -3 --separate-stderr stunq -l "127.0.0.1:$PORT"
	[[ "$stderr" == *'Address already in use'* ]]
}

@test "stunq against coturn, a server no one here wrote" {
	command -v turnserver
	bg_start coturn turnserver -n --no-cli --no-tls --no-dtls --stun-only \
		--listening-ip 127.0.0.1 --listening-port 34904 --log-file stdout \
		--simple-log --pidfile "$BATS_TEST_TMPDIR/turn.pid" \
		--userdb "$BATS_TEST_TMPDIR/turndb"
	local i=0 out=""
	# coturn prints nothing reliable when ready: ask until it answers
	while [ $i -lt 40 ]; do
		out=$(stunq -q -t 0.2 -p 40122 127.0.0.1:34904) && break
		i=$((i + 1))
	done
	assert_equal "$out" '127.0.0.1:40122'
}

@test "stunq(1): every option, a real .Os and SEE ALSO, examples that keep their quotes and run" {
	run man_checks stunq.1 stunq
	assert_success
	# the jq example, as the page renders it, run against a local responder
	start_responder srv 127.0.0.1:0
	ex=$(man_text "$TOP/man/stunq.1" | sed -n 's/^[[:space:]]*\$ \(stunq --json | jq .*\)$/\1/p')
	[ -n "$ex" ]
	STUNQ_SERVERS="127.0.0.1:$PORT" run --separate-stderr bash -o pipefail -c "$ex"
	assert_success
	assert_output --regexp "^[0-9.]+ 127\.0\.0\.1:$PORT\$"
}
