#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# derpcat against an independent DERP peer (tests/tools/derppeer.py, written
# from protocols.md section 1 alone, not from lib/derp*.c): the exact 101,
# the handshake, relaying, refusals and tolerance of unknown frames, on
# loopback. This is what shows the wire format is Tailscale's and not only
# self-consistent.

load helpers

DP=$TOP/tests/tools/derppeer.py

setup_file() {
	local k
	for k in a b c; do
		"$PY" "$DP" genkey >"$BATS_FILE_TMPDIR/$k.key"
	done
	export KA=$BATS_FILE_TMPDIR/a.key KB=$BATS_FILE_TMPDIR/b.key KC=$BATS_FILE_TMPDIR/c.key
	PA=$("$PY" "$DP" pubkey --key-file "$KA")
	PB=$("$PY" "$DP" pubkey --key-file "$KB")
	PC=$("$PY" "$DP" pubkey --key-file "$KC")
	export PA PB PC
}

teardown() {
	exec 8>&- 2>/dev/null || true
	bg_stop_all
}

dp() {
	"$PY" "$DP" "$@"
}

# A base64 key as an extended regex (it may hold + and /).
re() {
	printf '%s' "$1" | sed 's/[][+.*?(){}|^$\\]/\\&/g'
}

hexof() {
	printf '%b' "$1" | od -An -tx1 | tr -d ' \n'
}

need_derpcat() {
	[ -x "$MK_BIN/derpcat" ] || fail "derpcat is not built ($MK_BIN/derpcat)"
}

# start_pyserver NAME [ARGS...]: the Python DERP server; sets PORT and URL.
start_pyserver() {
	local name=$1; shift
	bg_start "$name" "$PY" "$DP" server --listen 127.0.0.1:0 "$@"
	wait_log "$name" '^ready [0-9]+$' 20
	PORT=$(sed -n 's/^ready \([0-9][0-9]*\)$/\1/p' "$BATS_TEST_TMPDIR/$name.log")
	URL=http://127.0.0.1:$PORT
}

# start_derpcat_server NAME [ARGS...]: derpcat -l over plain HTTP, no STUN;
# sets PORT and URL.
start_derpcat_server() {
	local name=$1; shift
	need_derpcat
	bg_start "$name" derpcat -l 127.0.0.1:0 --http --stun-port 0 "$@"
	wait_log "$name" 'listening on' 20
	PORT=$(listen_port "$name")
	[ -n "$PORT" ] || fail "no port in: $(bg_log "$name")"
	URL=http://127.0.0.1:$PORT
}

# start_pyclient NAME ARGS...: a Python client in the background, connected
# (its handshake done) when this returns.
start_pyclient() {
	local name=$1; shift
	bg_start "$name" "$PY" "$DP" client "$URL" "$@"
	wait_log "$name" '^derppeer: connected ' 20
}

# start_raw NAME KEYFILE PEER [OPTIONS...]: `derpcat --raw` with stdin from a
# fifo held open on fd 8 (write to it with >&8), stdout in NAME.out, stderr
# in NAME.log.
start_raw() {
	local name=$1 key=$2 peer=$3 t=$BATS_TEST_TMPDIR
	shift 3
	need_derpcat
	mkfifo "$t/$name.in"
	exec 8<>"$t/$name.in"
	derpcat --raw "$@" -k "$key" "$URL" "$peer" <"$t/$name.in" >"$t/$name.out" 2>"$t/$name.log" &
	echo $! >"$t/$name.pid"
	echo "$!" >>"$t/.pids"
}

# wait_out NAME STRING [SECONDS]: until STRING is in NAME.out (bounded).
wait_out() {
	local f=$BATS_TEST_TMPDIR/$1.out s=$2 limit=${3:-10} i=0
	while ! grep -Fq -- "$s" "$f" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "timed out waiting for '$s' in $1.out:" >&2
			od -c "$f" | head -20 >&2
			echo "--- $1.log:" >&2
			cat "$BATS_TEST_TMPDIR/$1.log" >&2
			return 1
		fi
		sleep 0.05
	done
}

# The packet lines ("SRCKEY HEX") a background Python client printed.
packets() {
	grep -v '^derppeer:' "$BATS_TEST_TMPDIR/$1.log" || true
}

# Both sides of a relay of three packets, the last 65536 bytes (the maximum),
# from A to an echoing B and back, compared by length and sha256.
relay_both_ways() {
	start_pyclient b --key-file "$KB" --echo --recv 3 --digest --timeout 30
	run --separate-stderr dp client "$URL" --key-file "$KA" --digest --recv 3 --timeout 20 \
		--send "$PB" hello --send-random "$PB" 1400 --send-random "$PB" 65536
	assert_success
	local sent
	sent=$(printf '%s\n' "${stderr_lines[@]}" | sed -n 's/^derppeer: sent [^ ]* \(len=.*\)$/\1/p')
	assert_equal "$(printf '%s\n' "${lines[@]}")" "$(printf '%s\n' "$sent" | sed "s|^|$PB |")"
	wait "$(bg_pid b)"
	assert_equal "$(packets b)" "$(printf '%s\n' "$sent" | sed "s|^|$PA |")"
}

# ------------------------------------------------------------ the peer itself

@test "derppeer: its codec matches the reference vectors (ServerKey, ClientInfo, ping, pong, health, restarting, disco)" {
	run dp vectors
	assert_success
	refute_output --partial FAIL
	assert_line 'ok ServerKey'
	assert_line 'ok ClientInfo'
}

@test "derppeer: its client and server agree (exact 101, relay both ways, refusals, garbage)" {
	start_pyserver srv
	run --separate-stderr dp client "$URL" --key-file "$KA" --expect-101-exact
	assert_success
	[[ $stderr == *'101 exact 172 bytes'* ]]
	relay_both_ways
	run dp impersonate "$URL" "$PB" --to "$PC"
	assert_success
	run dp garbage "$URL"
	assert_success
}

# ------------------------------------------------------------ derpcat's server

@test "derpcat -l: the upgrade is answered with exactly derper's 101 bytes and a ServerKey with the magic" {
	start_derpcat_server srv
	run --separate-stderr dp client "$URL" --key-file "$KA" --expect-101-exact
	assert_success
	[[ $stderr == *'101 exact 172 bytes'* ]]
	[[ $stderr == *'serverinfo {"version":2'* ]]
}

@test "derpcat -l: two Python clients relay through it both ways, up to 65536-byte packets" {
	start_derpcat_server srv
	relay_both_ways
}

@test "derpcat -l: Derp-Fast-Start: 1 suppresses the 101 and the handshake still completes" {
	start_derpcat_server srv
	run --separate-stderr dp client "$URL" --key-file "$KA"
	assert_success
	sk=$(printf '%s\n' "${stderr_lines[@]}" | sed -n 's/^derppeer: serverkey //p')
	[ -n "$sk" ]
	start_pyclient b --key-file "$KB" --recv 1 --timeout 20
	run --separate-stderr dp client "$URL" --key-file "$KA" --fast-start --server-key "$sk" \
		--send "$PB" fast
	assert_success
	wait "$(bg_pid b)"
	assert_equal "$(packets b)" "$PA $(hexof fast)"
}

@test "derpcat -l: a client that claims a key it does not hold is refused, relays nothing and displaces no one" {
	start_derpcat_server srv
	start_pyclient v --key-file "$KB" --recv 1 --timeout 30
	for mode in other-key zero-box short; do
		run dp impersonate "$URL" "$PB" --mode "$mode" --to "$PB"
		assert_success
		assert_output --partial 'refused'
	done
	run --separate-stderr dp client "$URL" --key-file "$KC" --send "$PB" legit
	assert_success
	wait "$(bg_pid v)"
	# The victim is still the one receiving, and got only the real packet.
	assert_equal "$(packets v)" "$PC $(hexof legit)"
}

@test "derpcat -l: unknown frame types are skipped, not fatal (section 1.3)" {
	start_derpcat_server srv
	run dp garbage "$URL" unknown-type unknown-large
	assert_success
}

@test "derpcat -l: oversized, short and truncated frames close that connection only" {
	start_derpcat_server srv
	run dp garbage "$URL" oversize-packet huge-length short-send truncated truncated-header alive
	assert_success
}

@test "derpcat -l: Ping and NotePreferred sizes are enforced as derper does" {
	start_derpcat_server srv
	run dp garbage "$URL" short-ping long-ping bad-note-preferred alive
	assert_success
}

@test "derpcat -l: mesh frames without the mesh key close the connection" {
	start_derpcat_server srv
	run dp garbage "$URL" watchconns-no-meshkey forward-no-meshkey closepeer-no-meshkey alive
	assert_success
}

@test "derpcat -l: a bad handshake (no ClientInfo, not JSON, over 256 KiB) is refused" {
	start_derpcat_server srv
	run dp garbage "$URL" no-clientinfo clientinfo-not-json clientinfo-huge alive
	assert_success
}

@test "derpcat -l: HTTP without Upgrade gets 426; /derp/probe 200; /generate_204 204; junk no 101" {
	start_derpcat_server srv
	run dp garbage "$URL" http-no-upgrade http-probe http-generate-204 http-garbage alive
	assert_success
}

@test "derpcat -l: PeerGone(NotHere) for a disco-looking packet to an absent key, none for others" {
	start_derpcat_server srv
	disco=5453f09f92ac$(printf '00%.0s' $(seq 56))
	run --separate-stderr dp client "$URL" --key-file "$KA" --send-hex "$PC" "$disco" \
		--wait peergone-nothere --timeout 10
	assert_success
	[[ $stderr == *"peergone $PC nothere"* ]]
	# 61 bytes is one short of a disco packet: dropped without a word.
	run --separate-stderr dp client "$URL" --key-file "$KA" --send-hex "$PC" "${disco:0:122}" \
		--wait peergone --timeout 2
	assert_failure 3
	[[ $stderr != *'derppeer: peergone '* ]]
}

@test "derpcat -l: PeerGone(Disconnected) when a peer that sent to us leaves" {
	start_derpcat_server srv
	start_pyclient b --key-file "$KB" --recv 1 --wait peergone-disconnected --timeout 20
	run --separate-stderr dp client "$URL" --key-file "$KA" --send "$PB" bye
	assert_success
	wait "$(bg_pid b)"
	assert_equal "$(packets b)" "$PA $(hexof bye)"
	grep -Fq "derppeer: peergone $PA disconnected" "$BATS_TEST_TMPDIR/b.log"
}

@test "derpcat -l: with two connections for one key the newer receives, the older gets nothing" {
	start_derpcat_server srv
	start_pyclient b1 --key-file "$KB" --recv 1 --timeout 30
	start_pyclient b2 --key-file "$KB" --recv 1 --timeout 30
	run --separate-stderr dp client "$URL" --key-file "$KA" --send "$PB" newest
	assert_success
	wait "$(bg_pid b2)"
	assert_equal "$(packets b2)" "$PA $(hexof newest)"
	assert_equal "$(packets b1)" ''
}

# start_mesh_server NAME: start_derpcat_server with a fresh mesh key in
# $MESH (for derppeer.py garbage --mesh-key).
start_mesh_server() {
	MESH=$BATS_TEST_TMPDIR/mesh.key
	openssl rand -hex 32 >"$MESH"
	start_derpcat_server "$1" --mesh-key "$MESH"
}

@test "derpcat -l: KeepAlives and Pongs of any size are discarded, as derper does; a ClientInfo of JSON null is admitted" {
	start_derpcat_server srv
	run dp garbage "$URL" keepalive-oversize pong-odd-size clientinfo-null alive
	assert_success
}

@test "derpcat -l: the older of two connections for a key receives once it sends any frame (a Ping), not only a SendPacket; when the receiver goes, the last to connect or send takes over" {
	start_derpcat_server srv
	run dp garbage "$URL" dup-last-active dup-active-after-close alive
	assert_success
}

@test "derpcat -l: PeerPresent flags as derper's (IsRegular only alone: prober 0x04, Ideal-Node 0x08, mesh 0x02); a watcher's first list includes itself" {
	start_mesh_server srv
	run dp garbage "$URL" present-flags watch-self alive --mesh-key "$MESH"
	assert_success
	assert_line --partial 'regular 0x01, prober 0x04, not-ideal 0x08, prober+not-ideal 0x0c, mesh 0x02'
}

@test "derpcat -l: with the mesh key, WatchConns with a payload and ClosePeer not of 32 bytes close the connection (the named peer stays)" {
	start_mesh_server srv
	run dp garbage "$URL" watchconns-payload closepeer-wrong-length alive --mesh-key "$MESH"
	assert_success
}

@test "derpcat -l: a disco ForwardPacket to a key not here gets PeerGone(NotHere) back to the mesh peer; a non-disco one nothing" {
	start_mesh_server srv
	run dp garbage "$URL" forward-nothere alive --mesh-key "$MESH"
	assert_success
}

@test "derpcat -l over TLS (--state): its printed pin is sha256 of the DER certificate it serves; exact 101" {
	need_derpcat
	bg_start srv derpcat -l 127.0.0.1:0 --state "$BATS_TEST_TMPDIR/state" --stun-port 0
	wait_log srv 'listening on' 20
	URL=https://127.0.0.1:$(listen_port srv)
	pin=$(sed -n 's/.*certificate pin \(sha256-raw:[0-9a-f]\{64\}\).*/\1/p' "$BATS_TEST_TMPDIR/srv.log")
	[ -n "$pin" ] || fail "no pin in: $(bg_log srv)"
	run --separate-stderr dp client "$URL" --key-file "$KA" --pin "$pin" --expect-101-exact
	assert_success
	[[ $stderr == *'101 exact 172 bytes'* ]]
	run --separate-stderr dp client "$URL" --key-file "$KA" --pin "sha256-raw:$(printf '0%.0s' $(seq 64))"
	assert_failure 1
	[[ $stderr == *'does not match the pin'* ]]
	start_pyclient b --key-file "$KB" --pin "$pin" --recv 1 --digest --timeout 30
	run --separate-stderr dp client "$URL" --key-file "$KA" --pin "$pin" --send-random "$PB" 65536
	assert_success
	sent=$(printf '%s\n' "${stderr_lines[@]}" | sed -n 's/^derppeer: sent [^ ]* \(len=.*\)$/\1/p')
	wait "$(bg_pid b)"
	assert_equal "$(packets b)" "$PA $sent"
}

# ------------------------------------------------------------ derpcat's client

# derpcat --raw with key A talks to an echoing Python client B: A's stdin
# arrives at B as the exact bytes, B's echo comes out on A's stdout.
raw_roundtrip() {
	start_pyclient b --key-file "$KB" --echo --recv 2 --timeout 30
	start_raw dc "$KA" "$PB"
	printf 'hello from derpcat\n' >&8
	wait_out dc 'hello from derpcat'
	printf 'second\n' >&8
	wait_out dc 'second'
	wait "$(bg_pid b)"
	assert_equal "$(packets b)" "$PA $(hexof 'hello from derpcat\n')
$PA $(hexof 'second\n')"
}

@test "derpcat --raw through the Python server: independent server accepts its handshake; bytes both ways" {
	start_pyserver srv
	raw_roundtrip
	run grep -E "^derppeer: connected $(re "$PA") " "$BATS_TEST_TMPDIR/srv.log"
	assert_success
	assert_output --partial 'info={"version":2'
	grep -Eq "^derppeer: http .* GET /derp upgrade=DERP" "$BATS_TEST_TMPDIR/srv.log"
}

@test "derpcat --raw through derpcat -l: bytes both ways with a Python peer" {
	start_derpcat_server srv
	raw_roundtrip
}

@test "derpcat --raw answers Pings and survives KeepAlives and unknown frames between packets" {
	# An unknown frame (type 0x7f) precedes every RecvPacket, Pings every
	# 0.3 s, KeepAlives every 0.5 s.
	start_pyserver srv --ping-interval 0.3 --keepalive 0.5 --inject-unknown
	raw_roundtrip
	wait_log srv "^derppeer: pong $(re "$PA") [0-9a-f]{16} ok$" 10
	wait_log srv "^derppeer: keepalive-sent $(re "$PA")$" 10
	start_pyclient b2 --key-file "$KB" --echo --recv 1 --timeout 30
	printf 'after keepalive\n' >&8
	wait_out dc 'after keepalive'
	wait "$(bg_pid b2)"
	assert_equal "$(packets b2)" "$PA $(hexof 'after keepalive\n')"
	refute grep -Eq "^derppeer: closed $(re "$PA") " "$BATS_TEST_TMPDIR/srv.log"
}

@test "derpcat --raw --pin over TLS to the Python server: openssl's sha256 of the DER cert is accepted, another refused" {
	local t=$BATS_TEST_TMPDIR
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$t/tls.key" -out "$t/tls.crt" -subj /CN=derp.test -days 2 2>/dev/null
	pin=sha256-raw:$(openssl x509 -in "$t/tls.crt" -outform DER | sha256sum | cut -d' ' -f1)
	bg_start srv "$PY" "$DP" server --listen 127.0.0.1:0 --tls-cert "$t/tls.crt" --tls-key "$t/tls.key"
	wait_log srv '^ready [0-9]+$' 20
	URL=https://127.0.0.1:$(sed -n 's/^ready \([0-9][0-9]*\)$/\1/p' "$t/srv.log")
	start_pyclient b --key-file "$KB" --pin "$pin" --echo --recv 1 --timeout 30
	start_raw dc "$KA" "$PB" --pin "$pin"
	printf 'over tls\n' >&8
	wait_out dc 'over tls'
	wait "$(bg_pid b)"
	assert_equal "$(packets b)" "$PA $(hexof 'over tls\n')"
	exec 8>&-
	kill "$(bg_pid dc)"
	# A wrong pin: derpcat hangs up after TLS, before any HTTP or ClientInfo.
	wrong=sha256-raw:$(printf '%s' "${pin#sha256-raw:}" | tr 0-9a-f 1-9a-f0)
	gets=$(grep -c ' GET /derp ' "$t/srv.log")
	accepts=$(grep -c '^derppeer: accept ' "$t/srv.log")
	run --separate-stderr timeout 20 derpcat --raw -k "$KC" --pin "$wrong" "$URL" "$PB" </dev/null
	assert_failure
	[ "$(grep -c '^derppeer: accept ' "$t/srv.log")" -gt "$accepts" ]
	assert_equal "$(grep -c ' GET /derp ' "$t/srv.log")" "$gets"
}

@test "derpcat --raw refuses a ServerKey without the DERP magic (sends no ClientInfo)" {
	start_pyserver srv --evil bad-magic
	start_raw dc "$KA" "$PB"
	# The server sees derpcat's upgrade, then derpcat hang up without a ClientInfo.
	wait_log srv '^derppeer: http .* GET /derp' 10
	wait_log srv '^derppeer: closed 127\.0\.0\.1:[0-9]+ ' 15
	refute grep -q '^derppeer: connected ' "$BATS_TEST_TMPDIR/srv.log"
}

@test "derpcat --raw drops a connection whose ServerInfo does not open" {
	start_pyserver srv --evil bad-serverinfo
	start_raw dc "$KA" "$PB"
	wait_log srv "^derppeer: connected $(re "$PA") " 10
	wait_log srv "^derppeer: closed $(re "$PA") " 15
}
