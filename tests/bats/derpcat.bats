#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# derpcat client and server over loopback: stream mode both ways and under
# load, EOF as nc, --lines, --raw, --udp, refusals, allowlists, restarts
# with --state, TLS pins, STUN, meshed servers, hardening.

load helpers

setup_file() {
	local d=$BATS_FILE_TMPDIR
	export KEYS=$d/keys LOADER=$d/derpcat-load
	mkdir -p "$KEYS"
	"$TOP/tests/tools/derpcat-keygen" "$KEYS" a b c d e f
	cc -O2 -std=c11 -D_GNU_SOURCE -Wall "$TOP/tests/tools/derpcat-load.c" \
		-o "$LOADER" -lsodium -lssl -lcrypto
	head -c 10000000 /dev/urandom >"$d/big"
}

teardown() {
	bg_stop_all
	# a sanitizer report from a background process fails the test too
	! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
		"$BATS_TEST_TMPDIR"/*.log "$BATS_TEST_TMPDIR"/*.err 2>/dev/null
}

pub() { cat "$KEYS/$1.pub"; }

# start_relay NAME [ARGS...]: derpcat -l on 127.0.0.1, any port, no STUN
# unless asked; sets PORT.
start_relay() {
	local name=$1; shift
	bg_start "$name" derpcat -l 127.0.0.1:0 --stun-port 0 "$@"
	wait_log "$name" 'listening on' 20
	PORT=$(listen_port "$name")
	[ -n "$PORT" ]
}

pin_of() {
	sed -n 's/.*certificate pin \(sha256-raw:[0-9a-f]\{64\}\).*/\1/p' \
		"$BATS_TEST_TMPDIR/$1.log" | tail -n 1
}

# A TCP port nobody listens on now (the kernel picked it a moment ago).
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_count FILE PATTERN N SECONDS: until N lines match (bounded).
wait_count() {
	local f=$1 re=$2 n=$3 limit=$4 i=0 c
	# (a file not there yet counts 0 lines: "[ '' -lt N ]" would end
	# the wait at once)
	while c=$(grep -Ec -- "$re" "$f" 2>/dev/null); [ "${c:-0}" -lt "$n" ]; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "timed out waiting for $n lines /$re/ in $f" >&2
			return 1
		fi
		sleep 0.05
	done
}

# wait_file FILE PATTERN [SECONDS]: until grep finds PATTERN (bounded).
wait_file() {
	local f=$1 re=$2 limit=${3:-10} i=0
	while ! grep -Eq -- "$re" "$f" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "timed out waiting for /$re/ in $f" >&2
			return 1
		fi
		sleep 0.05
	done
}

# wait_pid PID [SECONDS]: the exit status of a background job (bounded).
wait_pid() {
	local pid=$1 limit=${2:-30} i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "pid $pid still running after $limit s" >&2
			return 124
		fi
		sleep 0.05
	done
	wait "$pid"
}

@test "--help prints the usage to stdout and exits 0; --version" {
	run --separate-stderr derpcat --help
	assert_success
	assert_line --index 0 --partial 'usage: derpcat [-dNqv]'
	run derpcat --version
	assert_success
	assert_output --regexp '^derpcat [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "every option of derpcat is in its man page and both completions" {
	opts=$(sed -n '/^static const struct option longopts/,/^};/s/^\t{ "\([a-z-]*\)".*/\1/p' "$TOP/bin/derpcat.c")
	[ "$(wc -w <<<"$opts")" -ge 25 ]
	for o in $opts; do
		grep -q "^\.It .*Fl \\\\-$o\b" "$TOP/man/derpcat.1" || { echo "man: --$o" >&2; false; }
		grep -q -- "--$o\b" "$TOP/completions/bash/derpcat" || { echo "bash: --$o" >&2; false; }
		grep -q -- "--$o\b" "$TOP/completions/zsh/_derpcat" || { echo "zsh: --$o" >&2; false; }
	done
}

@test "usage errors exit 2 with one line naming the problem" {
	run -2 --separate-stderr derpcat http://127.0.0.1:1
	assert_equal "${stderr_lines[0]}" 'derpcat: give a relay URL and the peer'"'"'s key'
	run -2 --separate-stderr derpcat ftp://x "$(pub a)"
	assert_equal "${stderr_lines[0]}" 'derpcat: bad relay URL ftp://x: scheme must be https:// or http://'
	run -2 --separate-stderr derpcat http://127.0.0.1:1 notakey
	assert_equal "${stderr_lines[0]}" 'derpcat: bad peer key: notakey'
	run -2 --separate-stderr derpcat -l 127.0.0.1:0 --raw
	assert_equal "${stderr_lines[0]}" 'derpcat: client options given with -l'
	run -2 --separate-stderr derpcat --state /tmp http://127.0.0.1:1 "$(pub a)"
	assert_equal "${stderr_lines[0]}" 'derpcat: server options need -l'
	run -2 --separate-stderr derpcat --pin sha256-raw:12 http://127.0.0.1:1 "$(pub a)"
	assert_equal "${stderr_lines[0]}" 'derpcat: bad pin: sha256-raw:12 (want sha256-raw:<64 hex digits>)'
	run -2 --separate-stderr derpcat --watch http://127.0.0.1:1
	assert_equal "${stderr_lines[0]}" 'derpcat: --watch needs --mesh-key'
	run -2 --separate-stderr derpcat --raw --udp 9 http://127.0.0.1:1 "$(pub a)"
	[[ ${stderr_lines[0]} == 'derpcat: --raw, --udp and --lines: choose one'* ]]
	run -2 --separate-stderr derpcat -l nowhere
	assert_equal "${stderr_lines[0]}" 'derpcat: bad listen address: nowhere'
	run -2 --separate-stderr derpcat -k /nonexistent http://127.0.0.1:1 "$(pub a)"
	assert_equal "${stderr_lines[0]}" 'derpcat: /nonexistent: No such file or directory'
}

@test "two clients move data both ways; EOF ends each side as in nc (-N)" {
	start_relay srv --http
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	printf 'from a\n' | derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" >"$t/a.out" 2>"$t/a.err" &
	pa=$!
	printf 'from b\n' | derpcat -N -k "$KEYS/b.key" "$url" "$(pub a)" >"$t/b.out" 2>"$t/b.err" &
	pb=$!
	wait_pid "$pa" 30
	wait_pid "$pb" 30
	assert_equal "$(cat "$t/a.out")" 'from b'
	assert_equal "$(cat "$t/b.out")" 'from a'
}

@test "a relay given by name (localhost, from /etc/hosts) is looked up off the loop" {
	start_relay srv --http
	t=$BATS_TEST_TMPDIR
	printf 'by name\n' | derpcat -N -k "$KEYS/a.key" "http://localhost:$PORT" "$(pub b)" \
		>/dev/null 2>"$t/a.err" &
	pa=$!
	run --separate-stderr timeout 30 derpcat -k "$KEYS/b.key" "http://localhost:$PORT" "$(pub a)" </dev/null
	assert_success
	assert_output 'by name'
	wait_pid "$pa" 30
}

@test "a 10 MB file arrives intact while another pair floods and a third client stops reading" {
	start_relay srv --http -v
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	# c completes its handshake and never reads again
	bg_start stall "$LOADER" stall "$url" "$KEYS/c.key"
	wait_log stall '^ready' 10
	# f floods e (who reads) and c (who does not) as fast as it can
	bg_start sink derpcat --raw -d -k "$KEYS/e.key" "$url" "$(pub f)"
	bg_start flood "$LOADER" flood "$url" "$KEYS/f.key" 1400 "$(pub e)" "$(pub c)"
	wait_log flood '^ready' 10
	derpcat -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null >"$t/out" 2>"$t/b.err" &
	pb=$!
	SECONDS=0
	run timeout 90 derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" <"$BATS_FILE_TMPDIR/big"
	assert_success
	wait_pid "$pb" 30
	assert_equal "$(sha256sum <"$t/out")" "$(sha256sum <"$BATS_FILE_TMPDIR/big")"
	echo "10 MB in $SECONDS s under load" >&3
	# the reader that stopped was cut off; the relay dropped for it and
	# kept dropping for the flood rather than blocking anyone
	wait_log srv "$(pub c | sed 's/[+/]/./g').*write timed out" 20
	kill -USR1 "$(bg_pid srv)"
	wait_log srv 'drops:.*queue_head [1-9]' 5
	wait_log srv 'write_error [1-9]' 5
}

@test "EOF as in nc: without -N the receiver waits; -d reads no stdin" {
	start_relay srv --http
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	printf 'x\n' | derpcat -k "$KEYS/a.key" "$url" "$(pub b)" >/dev/null 2>&1 &
	pa=$!
	echo "$pa" >>"$t/.pids"
	derpcat -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null >"$t/b.out" 2>&1 &
	pb=$!
	echo "$pb" >>"$t/.pids"
	wait_file "$t/b.out" '^x$' 20
	# no end of stream was sent: both keep waiting, as nc does
	sleep 1
	kill -0 "$pa"
	kill -0 "$pb"
	kill "$pa" "$pb"
	# -d: stdin is never read (a terminal-less run would block on it)
	printf 'y\n' | derpcat -N -k "$KEYS/c.key" "$url" "$(pub d)" >/dev/null 2>&1 &
	pc=$!
	run timeout 30 derpcat -d -k "$KEYS/d.key" "$url" "$(pub c)" </dev/zero
	assert_success
	assert_output 'y'
	wait_pid "$pc" 20
}

@test "--lines sends a packet per line; --raw moves bare packets both ways" {
	start_relay srv --http -v
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	mkfifo "$t/in"
	exec 7<>"$t/in"
	derpcat --raw --lines -k "$KEYS/b.key" "$url" "$(pub a)" <"$t/in" >"$t/b.out" 2>"$t/b.err" &
	echo $! >>"$t/.pids"
	# raw packets to a key the relay does not know yet are dropped (as
	# derper does): b must be there before a sends
	wait_log srv "$(pub b | sed 's/[+/]/./g') connected" 20
	# a sends three lines and its end; raw has no end of stream: -N
	# makes a exit once they are out
	printf 'one\ntwo\nthree' | timeout 30 derpcat --raw --lines -N -k "$KEYS/a.key" \
		"$url" "$(pub b)" >"$t/a.out" 2>"$t/a.err" &
	pa=$!
	wait_file "$t/b.out" '^three$' 20
	assert_equal "$(cat "$t/b.out")" "$(printf 'one\ntwo\nthree')"
	wait_pid "$pa" 20
	# the other way, to a raw reader without --lines: bytes as sent
	derpcat --raw -k "$KEYS/a.key" "$url" "$(pub b)" </dev/null >"$t/a2.out" 2>&1 &
	echo $! >>"$t/.pids"
	# a's second connection
	wait_count "$BATS_TEST_TMPDIR/srv.log" "$(pub a | sed 's/[+/]/./g') connected" 2 20
	printf 'back\n' >&7
	wait_file "$t/a2.out" '^back$' 20
	exec 7>&-
	# stream mode with --lines: the bytes arrive intact
	printf 'l1\nl2\n' | derpcat --lines -N -k "$KEYS/c.key" "$url" "$(pub d)" >/dev/null 2>&1 &
	pc=$!
	run timeout 30 derpcat -k "$KEYS/d.key" "$url" "$(pub c)" </dev/null
	assert_success
	assert_output "$(printf 'l1\nl2')"
	wait_pid "$pc" 20
}

@test "--udp bridges local UDP sockets through the relay, datagram for datagram" {
	start_relay srv --http
	url=http://127.0.0.1:$PORT
	bg_start ua derpcat --udp 127.0.0.1:0 -k "$KEYS/a.key" "$url" "$(pub b)"
	bg_start ub derpcat --udp 0 -k "$KEYS/b.key" "$url" "$(pub a)"
	wait_log ua 'UDP on'
	wait_log ub 'UDP on'
	pa=$(sed -n 's/.*UDP on .*:\([0-9]*\)$/\1/p' "$BATS_TEST_TMPDIR/ua.log")
	pb=$(sed -n 's/.*UDP on .*:\([0-9]*\)$/\1/p' "$BATS_TEST_TMPDIR/ub.log")
	run timeout 30 "$PY" - "$pa" "$pb" <<'EOF'
import socket, sys, time
pa, pb = int(sys.argv[1]), int(sys.argv[2])
x = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); x.bind(("127.0.0.1", 0))
y = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); y.bind(("127.0.0.1", 0))
x.settimeout(0.3); y.settimeout(0.3)
# y speaks first so b learns where its local peer is; repeat until the
# relay carries it (the clients may still be connecting)
for i in range(100):
    y.sendto(b"hello from y", ("127.0.0.1", pb))
    x.sendto(b"hello from x", ("127.0.0.1", pa))
    try:
        d = y.recv(2000)
        break
    except socket.timeout:
        pass
else:
    sys.exit("nothing arrived")
assert d == b"hello from x", d
sizes = [1, 1400, 1500, 9000, 65000]
for n in sizes:
    x.sendto(bytes([n % 251]) * n, ("127.0.0.1", pa))
for n in sizes:
    d = y.recv(70000)
    assert d == bytes([n % 251]) * n, (n, len(d))
y.sendto(b"pong", ("127.0.0.1", pb))
while True:
    d = x.recv(2000)
    if d == b"pong":
        break
print("ok")
EOF
	assert_success
	assert_output 'ok'
}

@test "a client that cannot open the box (claims a key it does not hold) is refused" {
	start_relay srv --http
	run "$LOADER" impersonate "http://127.0.0.1:$PORT" "$(pub a)"
	assert_success
	assert_output 'refused'
	wait_log srv 'does not open' 5
}

@test "--verify-clients admits only listed keys (either form), reloads on SIGHUP" {
	t=$BATS_TEST_TMPDIR
	hexb=$(base64 -d <"$KEYS/b.pub" | od -An -tx1 | tr -d ' \n')
	printf '# allowed\n%s\n\nnodekey:%s  # b\n' "$(pub a)" "$hexb" >"$t/allow"
	start_relay srv --http -v --verify-clients "$t/allow"
	url=http://127.0.0.1:$PORT
	run -3 --separate-stderr timeout 30 derpcat -k "$KEYS/c.key" "$url" "$(pub a)" </dev/null
	[[ $stderr == *'not admitted'* ]]
	wait_log srv "refused: $(pub c | sed 's/[+/]/./g') is not an allowed client"
	printf 'ok\n' | derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" >/dev/null 2>&1 &
	pa=$!
	run timeout 30 derpcat -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null
	assert_success
	assert_output 'ok'
	wait_pid "$pa"
	# b leaves the list: a connected b is cut off at the reload
	bg_start b derpcat -d -k "$KEYS/b.key" "$url" "$(pub a)"
	wait_log srv "$(pub b | sed 's/[+/]/./g') connected" 10
	printf '%s\n' "$(pub a)" >"$t/allow"
	kill -HUP "$(bg_pid srv)"
	wait_log srv "$(pub b | sed 's/[+/]/./g') is no longer allowed" 10
	wait_log b 'not admitted' 20
	# a bad list is refused and the old one kept
	echo garbage >"$t/allow"
	kill -HUP "$(bg_pid srv)"
	wait_log srv 'allow:1: .*keeping the 1 keys' 10
}

@test "a killed and restarted server with the same --state is rejoined; key and pin kept" {
	t=$BATS_TEST_TMPDIR
	port=$(free_port)
	bg_start srv1 derpcat -l "127.0.0.1:$port" --stun-port 0 --state "$t/state"
	wait_log srv1 'listening on' 10
	pin=$(pin_of srv1)
	key=$(sed -n 's/.*server key \(.*\)/\1/p' "$t/srv1.log")
	url=https://127.0.0.1:$port
	mkfifo "$t/in"
	exec 7<>"$t/in"
	# (7>&-: a child holding the fifo's write end would never see EOF)
	derpcat -N -v -k "$KEYS/a.key" --pin "$pin" "$url" "$(pub b)" <"$t/in" >/dev/null 2>"$t/a.err" 7>&- &
	pa=$!
	echo "$pa" >>"$t/.pids"
	derpcat -v -k "$KEYS/b.key" --pin "$pin" "$url" "$(pub a)" </dev/null >"$t/b.out" 2>"$t/b.err" 7>&- &
	pb=$!
	echo "$pb" >>"$t/.pids"
	printf 'before\n' >&7
	wait_file "$t/b.out" '^before$' 20
	kill -KILL "$(bg_pid srv1)"
	wait_file "$t/b.err" 'reconnecting' 20
	printf 'while down\n' >&7
	bg_start srv2 derpcat -l "127.0.0.1:$port" --stun-port 0 --state "$t/state" 7>&-
	wait_log srv2 'listening on' 10
	assert_equal "$(pin_of srv2)" "$pin"
	assert_equal "$(sed -n 's/.*server key \(.*\)/\1/p' "$t/srv2.log")" "$key"
	printf 'after\n' >&7
	exec 7>&-
	wait_pid "$pb" 60
	wait_pid "$pa" 30
	assert_equal "$(cat "$t/b.out")" "$(printf 'before\nwhile down\nafter')"
	# both came back to the new server
	[ "$(grep -c 'connected to' "$t/b.err")" -ge 2 ]
}

@test "TLS: the kept self-signed certificate by pin and by --cafile; a wrong pin is refused" {
	t=$BATS_TEST_TMPDIR
	start_relay srv --state "$t/state"
	pin=$(pin_of srv)
	url=https://127.0.0.1:$PORT
	# the pin is the SHA-256 of the DER certificate the state holds
	assert_equal "$pin" "sha256-raw:$(openssl x509 -in "$t/state/tls.crt" -outform DER | sha256sum | cut -d' ' -f1)"
	[ "$(stat -c %a "$t/state/tls.key")" = 600 ]
	[ "$(stat -c %a "$t/state/derp.key")" = 600 ]
	printf 'pinned\n' | derpcat -N -k "$KEYS/a.key" --pin "$pin" "$url" "$(pub b)" >/dev/null 2>&1 &
	pa=$!
	run timeout 30 derpcat -k "$KEYS/b.key" --cafile "$t/state/tls.crt" "$url" "$(pub a)" </dev/null
	assert_success
	assert_output 'pinned'
	wait_pid "$pa"
	wrong=sha256-raw:$(printf '%s' "${pin#sha256-raw:}" | tr 0-9a-f 1-9a-f0)
	run -3 --separate-stderr timeout 30 derpcat -k "$KEYS/c.key" --pin "$wrong" "$url" "$(pub a)" </dev/null
	[[ $stderr == *'does not match the pin'* ]]
	# the system's CAs do not know it
	run -3 --separate-stderr timeout 30 derpcat -k "$KEYS/c.key" "$url" "$(pub a)" </dev/null
	[[ $stderr == *'certificate'* ]]
	# plain HTTP to a TLS port is not a DERP server
	run -3 --separate-stderr timeout 30 derpcat -k "$KEYS/c.key" "http://127.0.0.1:$PORT" "$(pub a)" </dev/null
	[[ $stderr == *'not a DERP server'* ]]
}

@test "--derpmap --region: dials the region's node (TLS, pinned by CertName)" {
	t=$BATS_TEST_TMPDIR
	start_relay srv --state "$t/state"
	pin=$(pin_of srv)
	cat >"$t/map.json" <<EOF
{"Regions":{"900":{"RegionID":900,"RegionCode":"lab","RegionName":"Lab",
 "Nodes":[{"Name":"900s","RegionID":900,"HostName":"stun.example","STUNOnly":true},
          {"Name":"900a","RegionID":900,"HostName":"derp.example","IPv4":"127.0.0.1",
           "IPv6":"none","DERPPort":$PORT,"CertName":"$pin"}]}}}
EOF
	printf 'via map\n' | derpcat -N -k "$KEYS/a.key" --derpmap "$t/map.json" --region 900 "$(pub b)" >/dev/null 2>&1 &
	pa=$!
	run timeout 30 derpcat -k "$KEYS/b.key" --derpmap "$t/map.json" --region 900 "$(pub a)" </dev/null
	assert_success
	assert_output 'via map'
	wait_pid "$pa"
	run -2 --separate-stderr derpcat --derpmap "$t/map.json" --region 1 "$(pub a)"
	assert_equal "${stderr_lines[0]}" "derpcat: $t/map.json: no region 1"
	echo '{"Regions":' >"$t/bad.json"
	run -2 --separate-stderr derpcat --derpmap "$t/bad.json" --region 1 "$(pub a)"
	[[ ${stderr_lines[0]} == "derpcat: $t/bad.json: not JSON"* ]]
}

@test "without -k an ephemeral key is used and its public half printed" {
	start_relay srv --http
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	derpcat -d "$url" "$(pub a)" >"$t/eph.out" 2>"$t/eph.err" &
	pe=$!
	echo "$pe" >>"$t/.pids"
	wait_file "$t/eph.err" "this run's key is" 10
	eph=$(sed -n "s/.*this run's key is \(.*\)/\1/p" "$t/eph.err")
	printf 'to the ephemeral\n' | timeout 30 derpcat -N -k "$KEYS/a.key" "$url" "$eph" >/dev/null 2>&1
	wait_pid "$pe" 30
	assert_equal "$(cat "$t/eph.out")" 'to the ephemeral'
}

@test "the relay's STUN port answers stunq" {
	sp=$((20000 + RANDOM % 20000))
	start_relay srv --http --stun-port "$sp"
	wait_log srv "STUN on 127.0.0.1:$sp"
	run --separate-stderr stunq -p 40221 "127.0.0.1:$sp"
	assert_success
	assert_output '127.0.0.1:40221'
}

@test "two meshed servers relay between their clients; --watch lists a server's clients" {
	t=$BATS_TEST_TMPDIR
	openssl rand -hex 32 >"$t/mesh.key"
	p1=$(free_port)
	p2=$(free_port)
	bg_start s1 derpcat -l "127.0.0.1:$p1" --http --stun-port 0 -v --mesh-key "$t/mesh.key" \
		--mesh-with "http://127.0.0.1:$p2"
	bg_start s2 derpcat -l "127.0.0.1:$p2" --http --stun-port 0 -v --mesh-key "$t/mesh.key" \
		--mesh-with "http://127.0.0.1:$p1"
	wait_log s1 'mesh: connected' 20
	wait_log s2 'mesh: connected' 20
	printf 'a on s1\n' | derpcat -N -k "$KEYS/a.key" "http://127.0.0.1:$p1" "$(pub b)" >"$t/a.out" 2>&1 &
	pa=$!
	printf 'b on s2\n' | derpcat -N -k "$KEYS/b.key" "http://127.0.0.1:$p2" "$(pub a)" >"$t/b.out" 2>&1 &
	pb=$!
	wait_pid "$pa" 30
	wait_pid "$pb" 30
	assert_equal "$(tail -n 1 "$t/a.out")" 'b on s2'
	assert_equal "$(tail -n 1 "$t/b.out")" 'a on s1'
	# a watcher with the mesh key sees s1's clients as they come and go
	bg_start watch derpcat --watch --mesh-key "$t/mesh.key" "http://127.0.0.1:$p1"
	bg_start c derpcat -d -k "$KEYS/c.key" "http://127.0.0.1:$p1" "$(pub a)"
	wait_log watch "^$(pub c | sed 's/[+/]/./g') present 127\.0\.0\.1:[0-9]+ regular$" 20
	kill "$(bg_pid c)"
	wait_log watch "^$(pub c | sed 's/[+/]/./g') gone disconnected$" 20
	# without the mesh key watching is refused
	openssl rand -hex 32 >"$t/other.key"
	bg_start w2 derpcat --watch --mesh-key "$t/other.key" "http://127.0.0.1:$p1"
	wait_log s1 'offered a wrong mesh key' 20
}

@test "hardening: junk, oversized frames, slow heads and connection floods end in a closed connection" {
	start_relay srv --http --max-conns 4
	url=http://127.0.0.1:$PORT
	run "$LOADER" bigframe "$url" "$KEYS/a.key"
	assert_success
	assert_output 'closed'
	run timeout 20 "$PY" - "$PORT" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(15); return s
# junk gets a 400 and a close
s = conn(); s.sendall(b"\x16\x03\x01 not http\r\n\r\n")
r = s.recv(100); assert r.startswith(b"HTTP/1.1 400 "), r
while s.recv(100): pass
# the probe and the captive-portal check, as derper answers them
s = conn(); s.sendall(b"GET /derp/probe HTTP/1.1\r\nHost: x\r\n\r\n")
r = s.recv(1000); assert r.startswith(b"HTTP/1.1 200 ") and b"Access-Control-Allow-Origin: *" in r, r
s = conn(); s.sendall(b"GET /generate_204 HTTP/1.1\r\nX-Tailscale-Challenge: abc\r\n\r\n")
r = s.recv(1000); assert r.startswith(b"HTTP/1.1 204 ") and b"X-Tailscale-Response: response abc" in r, r
# four connections are allowed from one address; the fifth is closed
held = [conn() for i in range(4)]
time.sleep(0.3)
s = conn()
assert s.recv(100) == b"", "fifth connection not closed"
for h in held: h.close()
print("ok")
EOF
	assert_success
	assert_output 'ok'
	wait_log srv 'too many connections from this address' 5
	# a head that never ends is cut off by the 10 s deadline
	run timeout 20 "$PY" - "$PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(15)
s.sendall(b"GET /derp HTTP/1.1\r\nHost: slow")
t = time.time()
assert s.recv(100) == b""
assert 8 < time.time() - t < 14, time.time() - t
print("ok")
EOF
	assert_success
	# after all that the relay still relays
	printf 'still here\n' | derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" >/dev/null 2>&1 &
	pa=$!
	run timeout 30 derpcat -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null
	assert_output 'still here'
	wait_pid "$pa"
}

@test "SIGUSR1 logs clients, packets and drops by reason; SIGTERM ends the server with 0" {
	start_relay srv --http
	kill -USR1 "$(bg_pid srv)"
	wait_log srv 'clients 0 ' 5
	wait_log srv 'drops: unknown_dest 0 unknown_dest_on_fwd 0 gone_disconnected 0 queue_head 0 queue_tail 0 write_error 0' 5
	kill -TERM "$(bg_pid srv)"
	wait_pid "$(bg_pid srv)" 10
}

@test "an unreachable relay fails at once with its reason, exit 3 (as nc); --retry keeps trying within -w" {
	port=$(free_port)
	SECONDS=0
	run -3 --separate-stderr derpcat -k "$KEYS/a.key" "http://127.0.0.1:$port" "$(pub b)" </dev/null
	assert_equal "$stderr" "derpcat: http://127.0.0.1:$port/derp: connect 127.0.0.1:$port: Connection refused"
	# at once: no retry (the bound is generous; it takes milliseconds)
	[ "$SECONDS" -le 5 ]
	SECONDS=0
	run -3 --separate-stderr derpcat -w 1 --retry -k "$KEYS/a.key" "http://127.0.0.1:$port" "$(pub b)" </dev/null
	assert_equal "$stderr" "derpcat: http://127.0.0.1:$port/derp: could not connect within 1000 ms (connect 127.0.0.1:$port: Connection refused)"
	[ "$SECONDS" -le 5 ]
}

@test "-w is a connect timeout: a relay that accepts and never answers ends the wait with exit 3" {
	# a listener that takes connections into its backlog and says nothing
	bg_start mute "$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print("port", s.getsockname()[1], flush=True)
time.sleep(120)'
	wait_log mute '^port' 10
	port=$(sed -n 's/^port //p' "$BATS_TEST_TMPDIR/mute.log")
	SECONDS=0
	run -3 --separate-stderr derpcat -w 1 -k "$KEYS/a.key" "http://127.0.0.1:$port" "$(pub b)" </dev/null
	assert_equal "$stderr" "derpcat: http://127.0.0.1:$port/derp: could not connect within 1000 ms"
	# the library's own connect timeout is 10 s: -w cut it short
	[ "$SECONDS" -le 5 ]
}

@test "-w: a peer that never appears ends the wait (exit 3); a stream that keeps moving is never cut" {
	start_relay srv --http
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	SECONDS=0
	run -3 --separate-stderr derpcat -w 1 -N -k "$KEYS/a.key" "$url" "$(pub b)" < <(echo hi)
	assert_equal "$stderr" "derpcat: no answer from the peer within 1000 ms"
	[ "$SECONDS" -le 5 ]
	# 6 s of a slow trickle (a line every 0.3 s) under -w 2: never idle
	derpcat -w 2 -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null >"$t/b.out" 2>"$t/b.err" &
	pb=$!
	echo "$pb b" >>"$t/.pids"
	run timeout 60 bash -c 'for i in $(seq 20); do echo "line $i"; sleep 0.3; done |
		derpcat -w 2 -N -k "$1" "$2" "$3"' _ "$KEYS/a.key" "$url" "$(pub b)"
	assert_success
	wait_pid "$pb" 30
	assert_equal "$(wc -l <"$t/b.out")" 20
	assert_equal "$(tail -n 1 "$t/b.out")" 'line 20'
	# the relay dies under a moving stream (a line every 0.2 s, ten
	# times within -w): both ends give up about -w later instead of
	# waiting for the relay
	bash -c 'while :; do echo x; sleep 0.2; done' | derpcat -w 2 -k "$KEYS/a.key" "$url" "$(pub b)" >/dev/null 2>"$t/a2.err" &
	pa=$!
	echo "$pa a2" >>"$t/.pids"
	derpcat -w 2 -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null >"$t/b2.out" 2>"$t/b2.err" &
	pb=$!
	echo "$pb b2" >>"$t/.pids"
	wait_count "$t/b2.out" '^x$' 5 20
	kill -KILL "$(bg_pid srv)"
	SECONDS=0
	st=0
	wait_pid "$pa" 20 || st=$?
	assert_equal "$st" 3
	st=0
	wait_pid "$pb" 20 || st=$?
	assert_equal "$st" 3
	[ "$SECONDS" -le 10 ]
	grep -q 'derpcat: nothing moved for 2000 ms; relay: ' "$t/a2.err"
	grep -q 'derpcat: nothing moved for 2000 ms; relay: ' "$t/b2.err"
}

@test "EOF on a pipe with the peer absent: derpcat waits without using CPU" {
	start_relay srv --http
	url=http://127.0.0.1:$PORT
	t=$BATS_TEST_TMPDIR
	mkfifo "$t/in"
	derpcat -v -N -k "$KEYS/a.key" "$url" "$(pub b)" <"$t/in" >/dev/null 2>"$t/a.err" &
	pa=$!
	echo "$pa a" >>"$t/.pids"
	echo hi >"$t/in"	# one line, then EOF on the pipe
	wait_file "$t/a.err" 'connected to' 20
	wait_file "$t/a.err" 'end of input' 20
	kill -0 "$pa"
	read -r -a st </proc/"$pa"/stat
	before=$((st[13] + st[14]))
	sleep 3
	read -r -a st </proc/"$pa"/stat
	after=$((st[13] + st[14]))
	kill -0 "$pa"	# still waiting for the peer, as nc would
	hz=$(getconf CLK_TCK)
	echo "CPU while waiting: $((after - before)) ticks of 1/$hz s in 3 s" >&3
	# a spinning loop burns ~3 s here; allow 0.1 s
	[ $((after - before)) -le $((hz / 10)) ]
}

@test "a server restarted with a new key: the client reconnects on its first attempt, the stream goes on" {
	t=$BATS_TEST_TMPDIR
	port=$(free_port)
	url=http://127.0.0.1:$port
	bg_start s1 derpcat -l "127.0.0.1:$port" --http --stun-port 0
	wait_log s1 'listening on' 10
	mkfifo "$t/in"
	exec 7<>"$t/in"
	derpcat -N -v -k "$KEYS/a.key" "$url" "$(pub b)" <"$t/in" >/dev/null 2>"$t/a.err" 7>&- &
	pa=$!
	echo "$pa" >>"$t/.pids"
	derpcat -v -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null >"$t/b.out" 2>"$t/b.err" 7>&- &
	pb=$!
	echo "$pb" >>"$t/.pids"
	printf 'one\n' >&7
	wait_file "$t/b.out" '^one$' 20
	k1=$(sed -n 's/.*server key \(.*\)/\1/p' "$t/s1.log")
	kill "$(bg_pid s1)"
	wait_file "$t/b.err" 'reconnecting' 20
	bg_start s2 derpcat -l "127.0.0.1:$port" --http --stun-port 0 7>&-
	wait_log s2 'listening on' 10
	[ "$(sed -n 's/.*server key \(.*\)/\1/p' "$t/s2.log")" != "$k1" ]
	printf 'two\n' >&7
	exec 7>&-
	wait_pid "$pb" 60
	wait_pid "$pa" 30
	assert_equal "$(cat "$t/b.out")" "$(printf 'one\ntwo')"
	for f in "$t/a.err" "$t/b.err"; do
		[ "$(grep -c 'connected to' "$f")" -eq 2 ]
		# while the relay was down: refused; once up: no failed attempt
		# (a fast start sealed to the old key cost one, seconds long)
		[ "$(grep -c 'the server closed the connection; reconnecting$' "$f")" -eq 1 ]
		[ "$(grep 'reconnecting' "$f" | grep -vc -e 'Connection refused; reconnecting$' \
			-e 'the server closed the connection; reconnecting$')" -eq 0 ]
	done
}

@test "fast start only when the TLS chain's meta cert names the server key (as Tailscale's client); a meta cert that lies fails" {
	t=$BATS_TEST_TMPDIR
	P=$TOP/tests/tools/derppeer.py
	$PY "$P" genkey >"$t/srv.key"
	hex=$($PY "$P" pubkey --key-file "$t/srv.key" --hex)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$t/tls.key" -out "$t/leaf.crt" -subj /CN=127.0.0.1 -days 2 2>/dev/null
	$PY "$TOP/tests/tools/derp-metacert.py" "$hex" "$t/meta.crt"
	$PY "$TOP/tests/tools/derp-metacert.py" "$hex" "$t/meta-bigserial.crt" 1000
	$PY "$TOP/tests/tools/derp-metacert.py" "$(printf '%064d' 7)" "$t/meta-wrong.crt"
	n=0
	for case in meta none bigserial wrong; do
		n=$((n + 1))
		case $case in
		meta) cat "$t/leaf.crt" "$t/meta.crt" ;;
		none) cat "$t/leaf.crt" ;;
		bigserial) cat "$t/leaf.crt" "$t/meta-bigserial.crt" ;;
		wrong) cat "$t/leaf.crt" "$t/meta-wrong.crt" ;;
		esac >"$t/chain$n.crt"
		bg_start "peer$n" "$PY" "$P" server --listen 127.0.0.1:0 --key-file "$t/srv.key" \
			--tls-cert "$t/chain$n.crt" --tls-key "$t/tls.key"
		wait_log "peer$n" '^ready ' 10
		port=$(sed -n 's/^ready //p' "$BATS_TEST_TMPDIR/peer$n.log")
		if [ "$case" = wrong ]; then
			# the chain names one key, ServerKey another: a liar
			run -3 --separate-stderr derpcat --raw -N --insecure -k "$KEYS/a.key" \
				"https://127.0.0.1:$port" "$(pub b)" < <(printf hi)
			assert_equal "$stderr" "derpcat: https://127.0.0.1:$port/derp: the server named two different keys"
		else
			run --separate-stderr derpcat --raw -N --insecure -k "$KEYS/a.key" \
				"https://127.0.0.1:$port" "$(pub b)" < <(printf hi)
			assert_success
		fi
		wait_log "peer$n" 'fast-start=' 10
		if [ "$case" = none ] || [ "$case" = bigserial ]; then
			grep -q 'GET /derp upgrade=DERP fast-start=-$' "$BATS_TEST_TMPDIR/peer$n.log"
		else
			grep -q 'GET /derp upgrade=DERP fast-start=1$' "$BATS_TEST_TMPDIR/peer$n.log"
		fi
	done
}

@test "-c mesh.conf: relays from its relay lines, in order (a dead first one is skipped); the peer by node name; the default file" {
	start_relay srv --http
	t=$BATS_TEST_TMPDIR
	dead=$(free_port)
	cat >"$t/mesh.conf" <<-EOF
	domain mesh.test
	relay http://127.0.0.1:$dead
	relay http://127.0.0.1:$PORT
	node alice $(pub a) 100.64.0.1
	node bob $(pub b) 100.64.0.2
	EOF
	printf 'by name\n' | derpcat -N -c "$t/mesh.conf" -k "$KEYS/a.key" bob >/dev/null 2>"$t/a.err" &
	pa=$!
	echo "$pa a" >>"$t/.pids"
	# the default file ($MESHKIT_CONF here), a name with the domain
	MESHKIT_CONF=$t/mesh.conf run --separate-stderr timeout 30 derpcat -k "$KEYS/b.key" alice.mesh.test </dev/null
	assert_success
	assert_output 'by name'
	[[ $stderr == *"http://127.0.0.1:$dead/derp: connect 127.0.0.1:$dead: Connection refused; trying the next relay"* ]]
	wait_pid "$pa" 20
	# a URL and a name together; errors name the file
	run -2 --separate-stderr derpcat -c "$t/mesh.conf" -k "$KEYS/b.key" http://127.0.0.1:$PORT carol
	assert_equal "${stderr_lines[0]}" "derpcat: $t/mesh.conf: no node carol (and not a key)"
	run -2 --separate-stderr derpcat -c "$t/nonexistent" -k "$KEYS/b.key" bob
	assert_equal "${stderr_lines[0]}" "derpcat: $t/nonexistent: No such file or directory"
	printf 'domain mesh.test\n' >"$t/norelay.conf"
	run -2 --separate-stderr derpcat -c "$t/norelay.conf" -k "$KEYS/b.key" "$(pub a)"
	assert_equal "${stderr_lines[0]}" "derpcat: $t/norelay.conf: no relay line"
	MESHKIT_CONF=$t/nonexistent run -2 --separate-stderr derpcat -k "$KEYS/b.key" bob
	assert_equal "${stderr_lines[0]}" "derpcat: give a relay URL and the peer's key"
	run -2 --separate-stderr derpcat -c "$t/mesh.conf" --derpmap x --region 1 bob
	assert_equal "${stderr_lines[0]}" "derpcat: relays from --derpmap or -c: choose one"
	# every relay down: each is tried once, then the reason and exit 3
	printf 'relay http://127.0.0.1:%s\n' "$dead" >"$t/dead.conf"
	run -3 --separate-stderr derpcat -c "$t/dead.conf" -k "$KEYS/b.key" "$(pub a)" </dev/null
	assert_equal "$stderr" "derpcat: http://127.0.0.1:$dead/derp: connect 127.0.0.1:$dead: Connection refused"
}

@test "a key file others can read gets wg-quick's warning (-k and --mesh-key)" {
	t=$(open_dir)
	mkdir -m 755 "$t/open"
	cp "$KEYS/a.key" "$t/open/a.key"
	chmod 644 "$t/open/a.key"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$t/open/mesh.key"
	chmod 644 "$t/open/mesh.key"
	port=$(free_port)
	run -3 --separate-stderr derpcat -k "$t/open/a.key" --mesh-key "$t/open/mesh.key" "http://127.0.0.1:$port" "$(pub b)" </dev/null
	assert_equal "${stderr_lines[0]}" "derpcat: Warning: \`$t/open/a.key' is world accessible"
	[[ $stderr == *"derpcat: Warning: \`$t/open/mesh.key' is world accessible"* ]]
	# 0600 (or a directory others cannot enter): no warning
	chmod 600 "$t/open/a.key" "$t/open/mesh.key"
	run -3 --separate-stderr derpcat -k "$t/open/a.key" --mesh-key "$t/open/mesh.key" "http://127.0.0.1:$port" "$(pub b)" </dev/null
	[[ $stderr != *Warning* ]]
	chmod 644 "$t/open/a.key"
	chmod 750 "$t/open"
	run -3 --separate-stderr derpcat -k "$t/open/a.key" "http://127.0.0.1:$port" "$(pub b)" </dev/null
	[[ $stderr != *Warning* ]]
}

@test "the proxy's password is never logged, at any -v; it is sent to the proxy" {
	t=$BATS_TEST_TMPDIR
	# a proxy that records the CONNECT head and refuses with 407
	bg_start proxy "$PY" -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print("port", s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            break
        head += d
    open(sys.argv[1], "ab").write(head)
    c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
    c.close()' "$t/heads"
	wait_log proxy '^port' 10
	pport=$(sed -n 's/^port //p' "$BATS_TEST_TMPDIR/proxy.log")
	# 198.18.0.1 (benchmarking range, never dialled: only the proxy is)
	for v in "" -v "-v -v" "-v -v -v"; do
		HTTPS_PROXY="http://user:s3cr%65tpw@127.0.0.1:$pport" run -3 --separate-stderr \
			derpcat $v -k "$KEYS/a.key" https://198.18.0.1:443 "$(pub b)" </dev/null
		[[ $stderr == *'proxy refused CONNECT: 407 Proxy Authentication Required'* ]]
		# neither as written (%65) nor decoded, nor its Basic form
		[[ $stderr != *s3cr* ]]
		[[ $stderr != *"$(printf 'user:s3cretpw' | base64)"* ]]
	done
	# with -v the proxy is named, without its password
	HTTPS_PROXY="http://user:s3cr%65tpw@127.0.0.1:$pport" run -3 --separate-stderr \
		derpcat -v -k "$KEYS/a.key" https://198.18.0.1:443 "$(pub b)" </dev/null
	[[ $stderr == *"through the proxy http://user:***@127.0.0.1:$pport"* ]]
	# the proxy did get it (decoded), so the test is not vacuous
	grep -q "Proxy-Authorization: Basic $(printf 'user:s3cretpw' | base64)" "$t/heads"
	grep -q '^CONNECT 198.18.0.1:443 HTTP/1.1' "$t/heads"
}

# wait_size FILE BYTES SECONDS: until FILE holds at least BYTES (bounded).
wait_size() {
	local f=$1 n=$2 limit=$3 i=0
	while [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -lt "$n" ]; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "timed out waiting for $n bytes in $f" >&2
			return 1
		fi
		sleep 0.05
	done
}

@test "a 30 MB stream survives a relay restart mid-stream, sha256 equal, in several runs under a flood" {
	t=$BATS_TEST_TMPDIR
	port=$(free_port)
	url=http://127.0.0.1:$port
	big=$t/big30
	head -c 30000000 /dev/urandom >"$big"
	g=0
	relay_up() {
		g=$((g + 1))
		bg_start "r$g" derpcat -l "127.0.0.1:$port" --http --stun-port 0
		wait_log "r$g" 'listening on' 10
		# load: f floods e through the same relay (a new flood for each
		# relay; the sink reconnects by itself)
		[ "$g" -gt 1 ] || bg_start sink derpcat --raw -d -k "$KEYS/e.key" "$url" "$(pub f)"
		bg_start "flood$g" "$LOADER" flood "$url" "$KEYS/f.key" 1400 "$(pub e)"
		wait_log "flood$g" '^ready' 10
	}
	relay_up
	# 5 runs; the sanitizer pass (make bats-san) sets 2, its time is dear
	for run in $(seq "${MK_RESTART_RUNS:-5}"); do
		# b's output goes through a reader that takes exactly 10 MB and
		# then stops until the relay is dead: b's window fills and a
		# stalls, so the kill lands mid-stream however fast the
		# machine (at full speed a quiet one moved all 30 MB between
		# two looks at the file)
		mkfifo "$t/pipe$run"
		( dd bs=1000000 count=10 iflag=fullblock status=none
		  until [ -e "$t/go$run" ]; do sleep 0.02; done
		  cat ) <"$t/pipe$run" >"$t/out$run" &
		pr=$!
		echo "$pr reader$run" >>"$t/.pids"
		derpcat -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null >"$t/pipe$run" 2>"$t/b$run.err" &
		pb=$!
		echo "$pb b$run" >>"$t/.pids"
		# full speed, so the relay dies with packets in flight, delayed
		# ACKs and a full send queue likely pending; stdin a regular
		# file (pumped from a timer) in odd runs, a pipe in even ones
		if [ $((run % 2)) = 1 ]; then
			derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" <"$big" >/dev/null 2>"$t/a$run.err" &
		else
			cat "$big" | derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" >/dev/null 2>"$t/a$run.err" &
		fi
		pa=$!
		echo "$pa a$run" >>"$t/.pids"
		wait_size "$t/out$run" 10000000 60
		# mid-stream: the reader holds the rest back until after the kill
		[ "$(stat -c %s "$t/out$run")" -eq 10000000 ]
		kill -KILL "$(bg_pid "r$g")"
		touch "$t/go$run"
		# down long enough for the delayed ACKs to come due while
		# disconnected (5 ms): two refused reconnections
		wait_count "$t/b$run.err" 'Connection refused; reconnecting' 2 20
		relay_up
		wait_pid "$pb" 120
		wait_pid "$pa" 60
		wait_pid "$pr" 30
		assert_equal "$(sha256sum <"$t/out$run")" "$(sha256sum <"$big")"
		grep -q 'reconnecting' "$t/b$run.err"
	done
}

@test "IPv6: a relay on [::1] and clients through it" {
	bg_start srv derpcat -l '[::1]:0' --http --stun-port 0
	wait_log srv 'listening on \[::1\]:' 10
	url="http://[::1]:$(listen_port srv)"
	printf 'over v6\n' | derpcat -N -k "$KEYS/a.key" "$url" "$(pub b)" >/dev/null 2>&1 &
	pa=$!
	run timeout 30 derpcat -k "$KEYS/b.key" "$url" "$(pub a)" </dev/null
	assert_success
	assert_output 'over v6'
	wait_pid "$pa"
}
