#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# derpcat -l as an operator meets it: the --state directory and the key
# files in it, the self-signed certificate's names, and the per-address
# handshake limit that a NAT shares. On loopback; the one wildcard listener
# lives in a network namespace of its own (unshare -n), which has nothing
# but a loopback that is down.

load helpers

DP=$TOP/tests/tools/derppeer.py

teardown() {
	bg_stop_all
}

need_derpcat() {
	[ -x "$MK_BIN/derpcat" ] || fail "derpcat is not built ($MK_BIN/derpcat)"
}

# start_tls NAME ARGS...: derpcat -l over TLS on 127.0.0.1, no STUN; sets
# PORT and URL.
start_tls() {
	local name=$1; shift
	need_derpcat
	bg_start "$name" derpcat -l 127.0.0.1:0 --stun-port 0 "$@"
	wait_log "$name" 'listening on' 20
	PORT=$(listen_port "$name")
	[ -n "$PORT" ] || fail "no port in: $(bg_log "$name")"
	URL=https://127.0.0.1:$PORT
}

der_sha256() {
	openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

@test "--state owned by another user, or writable by its group or others, is refused (exit 2, one line)" {
	need_derpcat
	# (timeout: a server that accepted the directory would run on; the
	# refusal comes at once, 10 s is a margin of orders of magnitude)
	st=$BATS_TEST_TMPDIR/st
	mkdir -m 0777 "$st"
	chmod 0777 "$st"
	run -2 --separate-stderr timeout 10 derpcat -l 127.0.0.1:0 --http --stun-port 0 --state "$st"
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "${stderr_lines[0]}" "derpcat: --state $st: writable by others (mode 0777); refusing to keep keys there"
	chmod 0770 "$st"
	run -2 --separate-stderr timeout 10 derpcat -l 127.0.0.1:0 --http --stun-port 0 --state "$st"
	[[ ${stderr_lines[0]} == *'writable by its group (mode 0770)'* ]]
	chmod 0700 "$st"
	chown nobody "$st"
	run -2 --separate-stderr timeout 10 derpcat -l 127.0.0.1:0 --http --stun-port 0 --state "$st"
	[[ ${stderr_lines[0]} == *"owned by uid $(id -u nobody), not by this user (uid $(id -u))"* ]]
	# nothing was written into the refused directory
	assert_equal "$(ls -A "$st")" ''
	chown "$(id -u)" "$st"
	start_tls ok --state "$st"
	[ -s "$st/derp.key" ]
}

@test "a kept key file others can read gets wg-quick's warning; the server still runs" {
	need_derpcat
	o=$(open_dir)
	st=$o/st
	start_tls first --state "$st" --http
	kill "$(bg_pid first)"
	wait "$(bg_pid first)" || true
	# made 0600 in a 0700 directory: no warning
	run ! grep -q 'world accessible' "$BATS_TEST_TMPDIR/first.log"
	chmod 0755 "$st"
	chmod 0644 "$st/derp.key"
	openssl rand -hex 32 >"$o/mesh.key"
	chmod 0644 "$o/mesh.key"
	start_tls second --state "$st" --http --mesh-key "$o/mesh.key"
	grep -Fxq "derpcat: Warning: \`$st/derp.key' is world accessible" "$BATS_TEST_TMPDIR/second.log"
	grep -Fxq "derpcat: Warning: \`$o/mesh.key' is world accessible" "$BATS_TEST_TMPDIR/second.log"
	run "$PY" "$DP" client "http://127.0.0.1:$PORT" --gen
	assert_success
}

@test "the self-signed certificate names the host (SAN): the listening address, --hostname, or on a wildcard the host name" {
	need_derpcat
	start_tls ip --state "$BATS_TEST_TMPDIR/ip"
	run openssl x509 -in "$BATS_TEST_TMPDIR/ip/tls.crt" -noout -checkip 127.0.0.1
	assert_output 'IP 127.0.0.1 does match certificate'
	start_tls named --state "$BATS_TEST_TMPDIR/named" --hostname relay.test
	run openssl x509 -in "$BATS_TEST_TMPDIR/named/tls.crt" -noout -checkhost relay.test
	assert_output 'Hostname relay.test does match certificate'
	# a wildcard listener, alone in a network namespace
	bg_start wild unshare -n derpcat -l :0 --stun-port 0 --state "$BATS_TEST_TMPDIR/wild"
	wait_log wild 'listening on' 20
	h=$(hostname)
	run openssl x509 -in "$BATS_TEST_TMPDIR/wild/tls.crt" -noout -checkhost "$h"
	assert_output "Hostname $h does match certificate"
	run openssl x509 -in "$BATS_TEST_TMPDIR/wild/tls.crt" -noout -ext subjectAltName
	assert_output --partial "DNS:$h"
}

@test "a kept certificate without a SAN for the name is kept (same pin), with a warning saying why and how to replace it" {
	need_derpcat
	st=$BATS_TEST_TMPDIR/st
	mkdir -m 0700 "$st"
	# as derpcat made them before it wrote a SAN for a wildcard listener
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj /CN=derpcat -keyout "$st/tls.key" -out "$st/tls.crt" 2>/dev/null
	chmod 0600 "$st/tls.key"
	old=$(der_sha256 "$st/tls.crt")
	start_tls srv --state "$st"
	grep -Fq "derpcat: $st/tls.crt is not for 127.0.0.1: Tailscale clients check the name even when pinning" \
		"$BATS_TEST_TMPDIR/srv.log"
	grep -Fq "certificate pin sha256-raw:$old" "$BATS_TEST_TMPDIR/srv.log"
	assert_equal "$(der_sha256 "$st/tls.crt")" "$old"
	# and it still serves it: a pinned client gets in
	run "$PY" "$DP" client "$URL" --gen --pin "sha256-raw:$old"
	assert_success
	# a certificate that does name the host gets no such warning
	start_tls fresh --state "$BATS_TEST_TMPDIR/fresh"
	kill "$(bg_pid fresh)"
	wait "$(bg_pid fresh)" || true
	start_tls again --state "$BATS_TEST_TMPDIR/fresh"
	run ! grep -q 'is not for' "$BATS_TEST_TMPDIR/again.log"
}

@test "unfinished handshakes per address: 32 by default; --max-conns raises them (an eighth) for clients behind one NAT" {
	need_derpcat
	bg_start def derpcat -l 127.0.0.1:0 --http --stun-port 0
	wait_log def 'listening on' 20
	run --separate-stderr "$PY" "$DP" crowd "http://127.0.0.1:$(listen_port def)" 40
	assert_failure 1
	assert_output 'held 32 refused 8 connect refused'
	bg_start big derpcat -l 127.0.0.1:0 --http --stun-port 0 --max-conns 1024
	wait_log big 'listening on' 20
	run --separate-stderr "$PY" "$DP" crowd "http://127.0.0.1:$(listen_port big)" 120
	assert_success
	assert_output 'held 120 refused 0 connect ok'
	# 1024/8 = 128 at once, and no more (a fresh server: the last crowd's
	# connections may not all be closed there yet)
	bg_start big2 derpcat -l 127.0.0.1:0 --http --stun-port 0 --max-conns 1024
	wait_log big2 'listening on' 20
	run --separate-stderr "$PY" "$DP" crowd "http://127.0.0.1:$(listen_port big2)" 130
	assert_failure 1
	assert_output 'held 128 refused 2 connect refused'
}
