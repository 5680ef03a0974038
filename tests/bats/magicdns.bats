#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# magicdns over loopback in this namespace (ports of 127.0.0.1 only; the
# default 100.100.100.100 and resolv.conf are tested in magicdns-lab.bats):
# names asked by dig and drill over UDP and TCP, forwarding to dnsmasq and
# to test peers, malformed packets, reloads. Every magicdns here is given
# its upstreams (never the host's resolv.conf).

load helpers

PEER="$PY $TOP/tests/tools/magicdns-peer.py"
K_ALICE=MtKQzyro/AMZEQQL80W95vd9+lxfT+a3vAwzAi0/G0A=
K_BOB=/tmnrig5drjnAWRblBuJnH0NX0F2YVV3tRcjLvOOriU=
K_CAROL=6UP8cbnqKWsaSNizIqlJThErGTXDRGOKBF/uEJTNsUk=
K_DAVE=w3515XnXXAWIlWUGdZ5HzbmCjU85JYLqyGdK9ly+Llo=

setup() {
	MESH=$BATS_TEST_TMPDIR/mesh.conf
	cat >"$MESH" <<EOF
# a test mesh
domain Mesh.Example
node alice $K_ALICE 100.64.0.1 fd7a:115c:a1e0::1
node bob $K_BOB 100.64.0.2
node carol $K_CAROL fd7a:115c:a1e0::3
EOF
}

teardown() {
	bg_stop_all
	# under the sanitizers (MK_BIN=build/san/bin) a report fails the test
	if grep -l -e 'Sanitizer' -e 'runtime error' "$BATS_TEST_TMPDIR"/*.log \
		2>/dev/null; then
		cat "$BATS_TEST_TMPDIR"/*.log >&2
		return 1
	fi
}

# start_md NAME ARGS...: magicdns on a free port of 127.0.0.1; MDPORT.
start_md() {
	local name=$1; shift
	bg_start "$name" magicdns -l 127.0.0.1:0 "$@"
	wait_log "$name" '^magicdns: ready' 10
	MDPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		"$BATS_TEST_TMPDIR/$name.log" | head -n 1)
	[ -n "$MDPORT" ]
}

# d ARGS...: dig at the magicdns on MDPORT, one try.
d() {
	dig -p "$MDPORT" @127.0.0.1 +time=3 +tries=1 "$@"
}

# start_dnsmasq NAME ARGS...: dnsmasq on a free port of 127.0.0.1; DMPORT.
start_dnsmasq() {
	local name=$1 i; shift
	for i in 1 2 3 4 5; do
		DMPORT=$((20000 + RANDOM % 20000))
		bg_start "$name" dnsmasq -d --no-resolv --no-hosts --bind-interfaces \
			--listen-address=127.0.0.1 -p "$DMPORT" --log-queries \
			--pid-file= "$@"
		if wait_log "$name" 'started, version' 5 2>/dev/null &&
			! grep -q 'failed to create' "$BATS_TEST_TMPDIR/$name.log"; then
			return 0
		fi
		kill "$(bg_pid "$name")" 2>/dev/null || true
	done
	return 1
}

# A free UDP port on 127.0.0.1 with nothing listening (for "upstream gone").
dead_port() {
	local p
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		p=$((20000 + RANDOM % 20000))
		if ! ss -Hlun "sport = :$p" | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# now_ms: the time in milliseconds (for "answered at once").
now_ms() { date +%s%3N; }

@test "--help prints the usage to stdout and exits 0; --version" {
	run --separate-stderr magicdns --help
	assert_success
	assert_line --index 0 --partial 'usage: magicdns [-qv]'
	run magicdns --version
	assert_success
	assert_output --regexp '^magicdns [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors and bad input exit 2 with one line naming the problem" {
	run -2 --separate-stderr magicdns -c "$MESH" -l 127.0.0.1:99999
	assert_equal "${stderr_lines[0]}" 'magicdns: bad listen address: 127.0.0.1:99999'
	run -2 --separate-stderr magicdns -c "$MESH" -l 127.0.0.1:0 -u ftp://x
	assert_equal "${stderr_lines[0]}" 'magicdns: bad upstream: ftp://x'
	run -2 --separate-stderr magicdns -c "$MESH" -l 127.0.0.1:0 -u none -a 10.0.0.1/8
	assert_equal "${stderr_lines[0]}" 'magicdns: bad --allow prefix: 10.0.0.1/8'
	run -2 --separate-stderr magicdns -c "$MESH" extra
	assert_equal "${stderr_lines[0]}" 'magicdns: unexpected argument: extra'
	run -2 --separate-stderr magicdns --uninstall -c "$MESH"
	assert_equal "${stderr_lines[0]}" 'magicdns: --uninstall takes only --resolv-conf and --state-dir'
	run -2 --separate-stderr magicdns --rate -1
	assert_equal "${stderr_lines[0]}" 'magicdns: bad rate: -1'
	run -2 magicdns --no-such-option
	echo 'node x' >>"$MESH"
	run -2 --separate-stderr magicdns -c "$MESH" -l 127.0.0.1:0 -u none
	assert_equal "${stderr_lines[0]}" "magicdns: $MESH:6: node needs a name, a public key and at least one address"
	printf '1.2.3.4 ok\n1.2.3 bad\n' >"$BATS_TEST_TMPDIR/hosts"
	run -2 --separate-stderr magicdns -H "$BATS_TEST_TMPDIR/hosts" -l 127.0.0.1:0 -u none
	assert_equal "${stderr_lines[0]}" "magicdns: $BATS_TEST_TMPDIR/hosts:2: bad address 1.2.3"
	run -2 --separate-stderr magicdns -c "$BATS_TEST_TMPDIR/missing" -l 127.0.0.1:0 -u none
	assert_equal "${stderr_lines[0]}" "magicdns: $BATS_TEST_TMPDIR/missing: No such file or directory"
}

@test "mesh names over UDP: FQDN in any case, AAAA, bare names, TTL 5, AA" {
	start_md md -c "$MESH" -u none
	run d +short alice.mesh.example
	assert_output 100.64.0.1
	run d +short ALICE.Mesh.EXAMPLE. AAAA
	assert_output fd7a:115c:a1e0::1
	run d +short bob
	assert_output 100.64.0.2
	run d +noall +answer alice.mesh.example
	assert_output --regexp '^alice\.mesh\.example\.[[:space:]]+5[[:space:]]+IN[[:space:]]+A[[:space:]]+100\.64\.0\.1$'
	run d alice.mesh.example
	assert_output --regexp 'flags: qr aa rd ra;'
	# and drill, another client on another library
	run drill -p "$MDPORT" @127.0.0.1 bob.mesh.example A
	assert_output --regexp $'bob\\.mesh\\.example\\.\t5\tIN\tA\t100\\.64\\.0\\.2'
}

@test "mesh names over TCP, with dig and drill" {
	start_md md -c "$MESH" -u none
	run d +tcp +short alice.mesh.example
	assert_output 100.64.0.1
	run drill -t -p "$MDPORT" @127.0.0.1 carol.mesh.example AAAA
	assert_output --regexp $'carol\\.mesh\\.example\\.\t5\tIN\tAAAA\tfd7a:115c:a1e0::3'
	run drill -t -p "$MDPORT" @127.0.0.1 -x 100.64.0.1
	assert_output --regexp $'PTR\talice\\.mesh\\.example\\.'
	# several queries on one connection, answered in turn
	q1=$($PEER query alice.mesh.example) q2=$($PEER query bob.mesh.example)
	run $PEER send --tcp 127.0.0.1 "$MDPORT" "$q1" "$q2"
	assert_success
	assert_equal "${#lines[@]}" 2
	[[ ${lines[0]} == *6440000[1]* ]]	# 100.64.0.1 in the answer
	[[ ${lines[1]} == *64400002* ]]
}

@test "unknown mesh name: NXDOMAIN with the zone's SOA (TTL 10); no data: NOERROR + SOA" {
	start_md md -c "$MESH" -u none
	run d dave.mesh.example
	assert_output --partial 'status: NXDOMAIN'
	assert_output --regexp 'mesh\.example\.[[:space:]]+10[[:space:]]+IN[[:space:]]+SOA[[:space:]]+mesh\.example\. mesh\.example\. [0-9]+ 10 10 10 10'
	run drill -p "$MDPORT" @127.0.0.1 dave.mesh.example
	assert_output --partial 'rcode: NXDOMAIN'
	run d carol.mesh.example A
	assert_output --partial 'status: NOERROR'
	assert_output --partial 'ANSWER: 0, AUTHORITY: 1'
	run d alice.mesh.example MX
	assert_output --partial 'status: NOERROR'
	assert_output --partial 'ANSWER: 0, AUTHORITY: 1'
	run d +tcp mesh.example SOA +short
	assert_output --regexp '^mesh\.example\. mesh\.example\. [0-9]+ 10 10 10 10$'
}

@test "PTR for the mesh's own addresses; a wildcard under a node" {
	start_md md -c "$MESH" -u none
	run d +short -x 100.64.0.2
	assert_output bob.mesh.example.
	run d +short -x fd7a:115c:a1e0::3
	assert_output carol.mesh.example.
	run d +short www.alice.mesh.example
	assert_output 100.64.0.1
	run d +short a.b.c.bob.mesh.example
	assert_output 100.64.0.2
	run d +short -t AAAA svc.alice.mesh.example
	assert_output fd7a:115c:a1e0::1
	run d foo.onion
	assert_output --partial 'status: NXDOMAIN'
}

@test "a hosts file with --domain: short names get the domain, others stay as written" {
	cat >"$BATS_TEST_TMPDIR/hosts" <<'EOF'
192.0.2.7	printer printer.lab.test	# two names, one host
2001:db8::7	printer
198.51.100.9	nas.other.org
EOF
	start_md md -H "$BATS_TEST_TMPDIR/hosts" -d lab.test -u none
	run d +short printer.lab.test
	assert_output 192.0.2.7
	run d +short printer AAAA
	assert_output 2001:db8::7
	run d +short nas.other.org
	assert_output 198.51.100.9
	run d +short -x 198.51.100.9
	assert_output nas.other.org.
	run d nothing.lab.test
	assert_output --partial 'status: NXDOMAIN'
	# mesh.conf and a hosts file together
	start_md md2 -c "$MESH" -H "$BATS_TEST_TMPDIR/hosts" -u none
	run d +short printer.mesh.example
	assert_output 192.0.2.7
	run d +short alice.mesh.example
	assert_output 100.64.0.1
}

@test "forwarding to dnsmasq: ID kept, a big answer fetched over TCP, fitted to the client" {
	big=$(printf 'x%.0s' $(seq 250))
	big="$big,$big,$big,$big,$big,$big,$big,$big,$big,$big,$big,$big"
	start_dnsmasq dm --address=/fwd.test/192.0.2.55 --txt-record=big.fwd.test,"$big"
	start_md md -c "$MESH" -u "127.0.0.1:$DMPORT"
	run d +short www.fwd.test
	assert_output 192.0.2.55
	# the rest of 100.64.0.0/10 is not the mesh's: asked upstream
	run d +short -x 100.64.0.9
	assert_success
	grep -q 'query\[PTR\] 9.0.64.100.in-addr.arpa' "$BATS_TEST_TMPDIR/dm.log"
	# 3 kB: dnsmasq truncates over UDP, magicdns asks again over TCP and
	# the client, which takes 4096 bytes, gets it all over UDP
	run d +bufsize=4096 +ignore big.fwd.test TXT
	assert_output --partial 'status: NOERROR'
	assert_output --partial 'ANSWER: 1,'
	assert_output --regexp 'MSG SIZE  rcvd: 3[0-9]{3}'
	refute_output --partial 'flags: qr tc'
	# without EDNS the client takes 512 bytes: TC, no records
	run d +noedns +ignore big.fwd.test TXT
	assert_output --partial 'flags: qr aa tc rd ra;'
	assert_output --partial 'ANSWER: 0,'
	# and then asks over TCP
	run d +noedns big.fwd.test TXT
	assert_output --partial 'ANSWER: 1,'
	kill -USR1 "$(bg_pid md)"
	wait_log md 'upstream: answered [0-9]+, servfail 0, tcp [1-9]'
	# the ID of the answer is the client's (dig checks it; so do we)
	q=$($PEER query www.fwd.test)
	run $PEER send 127.0.0.1 "$MDPORT" "$q"
	assert_output --regexp '^42428[0-9a-f]{3}00010001'
}

# free_udp_peer NAME MODE: a magicdns-peer.py server on a free port; UPORT.
free_udp_peer() {
	local name=$1 mode=$2
	for _ in 1 2 3 4 5; do
		UPORT=$((20000 + RANDOM % 20000))
		bg_start "$name" $PEER "$mode" 127.0.0.1 "$UPORT"
		wait_log "$name" '^ready' 5 && return 0
	done
	return 1
}

@test "truncation: a UDP answer too big keeps the records that fit, with TC; local and forwarded" {
	# 32 addresses (the most one name takes) here, 60 in dnsmasq
	for i in $(seq 32); do
		echo "10.0.0.$i many"
	done >"$BATS_TEST_TMPDIR/hosts"
	for i in $(seq 60); do
		echo "10.0.0.$i many.fwd.test"
	done >"$BATS_TEST_TMPDIR/dm.hosts"
	start_dnsmasq dm --addn-hosts="$BATS_TEST_TMPDIR/dm.hosts"
	start_md md -H "$BATS_TEST_TMPDIR/hosts" -d lab.test -u "127.0.0.1:$DMPORT" -vv
	# local: 12 + 19 (question) + 30 x 16 bytes fit in 512
	run d +noedns +ignore many.lab.test
	assert_output --partial 'flags: qr aa tc rd ra;'
	assert_output --partial 'ANSWER: 30,'
	assert_output --regexp 'MSG SIZE  rcvd: (49[0-9]|50[0-9]|51[0-2])'
	# and all 32 over TCP, or with a large enough EDNS size
	run d +tcp many.lab.test
	assert_output --partial 'ANSWER: 32,'
	run d +bufsize=1232 many.lab.test
	assert_output --partial 'ANSWER: 32,'
	refute_output --partial ' tc '
	# forwarded: what fits of dnsmasq's 60, TC set
	run d +noedns +ignore many.fwd.test
	assert_output --partial 'status: NOERROR'
	assert_output --regexp 'flags: qr( aa)? tc rd ra;'
	assert_output --regexp 'ANSWER: [1-5]?[0-9],'
	refute_output --partial 'ANSWER: 0,'
	run d +tcp many.fwd.test
	assert_output --partial 'ANSWER: 60,'
	wait_log md "many\.fwd\.test A: answered by 127\.0\.0\.1:$DMPORT: NOERROR in [0-9]+ ms; truncated to fit the client \(TC\)"
}

@test "an upstream's truncated answer reaches a UDP client when the upstream has no TCP" {
	free_udp_peer tc truncating
	start_md md -c "$MESH" -u "127.0.0.1:$UPORT" -vv
	run d +ignore www.tc.test
	assert_output --partial 'status: NOERROR'
	assert_output --regexp 'flags: qr tc rd;'
	assert_output --partial 'ANSWER: 1,'
	assert_output --regexp 'www\.tc\.test\.[[:space:]]+60[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.99'
	wait_log md "www\.tc\.test A: truncated answer from 127\.0\.0\.1:$UPORT passed on \(no answer over TCP\): NOERROR in [0-9]+ ms"
	# a TCP client asked for all of it: that could not be had
	run d +tcp www.tc.test
	assert_output --partial 'status: SERVFAIL'
	kill -USR1 "$(bg_pid md)"
	wait_log md 'truncated 1,'
}

@test "a query with two OPT records: FORMERR (RFC 6891), never forwarded" {
	free_udp_peer echo echo
	start_md md -c "$MESH" -u "127.0.0.1:$UPORT"
	opt=00002904d0000000000000
	q=$($PEER query www.example.org)
	run $PEER send 127.0.0.1 "$MDPORT" "${q:0:20}0002${q:24}$opt$opt"
	assert_output --regexp '^42428181'
	run $PEER send --tcp 127.0.0.1 "$MDPORT" "${q:0:20}0002${q:24}$opt$opt"
	assert_output --regexp '^42428181'
	# one is fine, and goes upstream
	run $PEER send 127.0.0.1 "$MDPORT" "${q:0:20}0001${q:24}$opt"
	assert_output --regexp '^42428180'
	assert_equal "$(grep -vc '^ready' "$BATS_TEST_TMPDIR/echo.log")" 1
}

@test "-vv logs what became of each forwarded query" {
	start_dnsmasq dm --address=/fwd.test/192.0.2.55
	start_md md -c "$MESH" -u "127.0.0.1:$DMPORT" -vv
	d +short www.fwd.test >/dev/null
	wait_log md "^magicdns: 127\.0\.0\.1:[0-9]+ www\.fwd\.test A: answered by 127\.0\.0\.1:$DMPORT: NOERROR in [0-9]+ ms$"
	d +tcp +short www2.fwd.test >/dev/null
	wait_log md "www2\.fwd\.test A: answered by 127\.0\.0\.1:$DMPORT: NOERROR in [0-9]+ ms$"
	d +short alice.mesh.example >/dev/null
	wait_log md 'alice\.mesh\.example A: local NOERROR'
	# a silent upstream and a refused one: SERVFAIL, the silence counted
	free_udp_peer hole blackhole
	port=$(dead_port)
	start_md md2 -c "$MESH" -u "127.0.0.1:$UPORT" -u "127.0.0.1:$port" -vv
	d www.stalled.test >/dev/null || true
	wait_log md2 'www\.stalled\.test A: no upstream answered: SERVFAIL in [0-9]+ ms; 1 upstream timed out$'
	# no upstream at all
	start_md md3 -c "$MESH" -u none -vv
	d www.example.org >/dev/null || true
	wait_log md3 'www\.example\.org A: no upstream: SERVFAIL'
	# and without -vv, none of it
	start_md md4 -c "$MESH" -u "127.0.0.1:$DMPORT"
	d +short www.fwd.test >/dev/null
	run grep -c 'answered by' "$BATS_TEST_TMPDIR/md4.log"
	assert_output 0
}

@test "TCP pipelining: 40 forwarded queries in one write get 40 answers (past the cap of 32 pending)" {
	start_dnsmasq dm --address=/fwd.test/192.0.2.55
	start_md md -c "$MESH" -u "127.0.0.1:$DMPORT"
	q=$($PEER query www.fwd.test)
	msgs=()
	for _ in $(seq 40); do
		msgs+=("$q")
	done
	# 5 s: well under the 10 s idle close that used to free the rest
	run $PEER send --tcp --timeout 5 127.0.0.1 "$MDPORT" "${msgs[@]}"
	assert_success
	refute_output --partial timeout
	assert_equal "${#lines[@]}" 40
	for l in "${lines[@]}"; do
		[[ $l == 4242858000010001* ]]
	done
	# mixed with local names, on one connection, 100 of them
	q2=$($PEER query bob.mesh.example)
	msgs=()
	for _ in $(seq 50); do
		msgs+=("$q" "$q2")
	done
	run $PEER send --tcp --timeout 5 127.0.0.1 "$MDPORT" "${msgs[@]}"
	assert_equal "${#lines[@]}" 100
	refute_output --partial timeout
}

@test "one source cannot take every TCP slot: 16 a source, a message whole within 5 s" {
	start_md md -c "$MESH" -u none -vv
	# 300 connections from 127.0.0.1, each announcing 65535 bytes and
	# sending one a second for 8 s
	bg_start hold $PEER hold --source 127.0.0.1 127.0.0.1 "$MDPORT" 300 8
	wait_log hold '^ready' 30
	# meanwhile another source is answered over TCP
	run d +tcp -b 127.0.0.2 +short alice.mesh.example
	assert_output 100.64.0.1
	run $PEER send --tcp 127.0.0.1 "$MDPORT" "$($PEER query bob.mesh.example)"
	assert_output closed	# 127.0.0.1 has its 16 already
	wait "$(bg_pid hold)"
	# the 284 past its share at once, its 16 when their message was not
	# whole 5 s after it began (a byte a second does not keep them)
	grep -qx 'closed 300 of 300' "$BATS_TEST_TMPDIR/hold.log"
	first=$(sed -n 's/^first-closed //p' "$BATS_TEST_TMPDIR/hold.log")
	[ "$first" != never ]
	# 5 s after the first byte, sent at 0; 1 s of margin for timers
	awk -v f="$first" 'BEGIN { exit !(f >= 4.0) }'
	kill -USR1 "$(bg_pid md)"
	wait_log md 'tcp 17 \(turned away 28[0-9], timed out 16\)'
	grep -q '127\.0\.0\.1:[0-9]*: tcp: a message not whole in 5 s; closed' \
		"$BATS_TEST_TMPDIR/md.log"
	# and a client that sends its message in pieces, in time, is answered
	run d +tcp +short bob.mesh.example
	assert_output 100.64.0.2
}

@test "the query goes upstream as sent: EDNS, DO and options; only the ID differs" {
	for _ in 1 2 3 4 5; do
		UPORT=$((20000 + RANDOM % 20000))
		bg_start echo $PEER echo 127.0.0.1 "$UPORT"
		wait_log echo '^ready' 5 && break
	done
	start_md md -c "$MESH" -u "127.0.0.1:$UPORT"
	run d +dnssec +bufsize=1400 +nsid +nocookie +noadflag +norecurse +cd \
		www.example.org
	assert_output --partial 'status: NOERROR'
	assert_output --regexp 'flags: qr ra cd;'
	assert_output --partial 'EDNS: version: 0, flags: do; udp: 1400'
	sent=$(tail -n 1 "$BATS_TEST_TMPDIR/echo.log")
	# flags 0x0010 (CD, no RD), one question, no answers, one additional
	assert_equal "${sent:4:20}" 00100001000000000001
	# www.example.org A IN, then the OPT record: size 1400, DO, NSID
	assert_equal "${sent:24}" \
		03777777076578616d706c65036f72670000010001000029057800008000000400030000
	assert_equal "$(grep -c . "$BATS_TEST_TMPDIR/echo.log")" 2
}

@test "SERVFAIL at once when the upstream is gone" {
	port=$(dead_port)
	start_md md -c "$MESH" -u "127.0.0.1:$port"
	t0=$(now_ms)
	run d www.example.org
	t1=$(now_ms)
	assert_output --partial 'status: SERVFAIL'
	[ $((t1 - t0)) -lt 1500 ]
	# over TCP too
	run d +tcp www.example.org
	assert_output --partial 'status: SERVFAIL'
	run d +short alice.mesh.example
	assert_output 100.64.0.1
}

@test "a stalled upstream: SERVFAIL after 2 s; local names answered at once meanwhile" {
	for _ in 1 2 3 4 5; do
		UPORT=$((20000 + RANDOM % 20000))
		bg_start hole $PEER blackhole 127.0.0.1 "$UPORT"
		wait_log hole '^ready' 5 && break
	done
	start_md md -c "$MESH" -u "127.0.0.1:$UPORT"
	t0=$(now_ms)
	d www.stalled.test >"$BATS_TEST_TMPDIR/slow.out" &
	slow=$!
	wait_log hole swallowed 5
	# each answered at once, by dig's own clock (not counting its start,
	# which a loaded machine stretches): under 500 ms where the stalled
	# one takes 2000; the first while the stalled one still waits
	for i in 1 2 3 4 5; do
		run d alice.mesh.example
		assert_output --regexp $'ANSWER SECTION:\nalice\.mesh\.example\.[[:space:]]+5[[:space:]]+IN[[:space:]]+A[[:space:]]+100\.64\.0\.1'
		qt=$(sed -n 's/^;; Query time: \([0-9]*\) msec$/\1/p' <<<"$output")
		[ -n "$qt" ] && [ "$qt" -lt 500 ]
		[ "$i" -gt 1 ] || kill -0 "$slow"
	done
	wait "$slow"
	t2=$(now_ms)
	grep -q 'status: SERVFAIL' "$BATS_TEST_TMPDIR/slow.out"
	[ $((t2 - t0)) -ge 1900 ]
	[ $((t2 - t0)) -lt 4000 ]
	# over TCP: the forwarded query first, the local one second on the
	# same connection, and the local answer comes back first
	q1=$($PEER query www.stalled.test) q2=$($PEER query bob.mesh.example)
	run $PEER send --tcp --timeout 5 127.0.0.1 "$MDPORT" "$q1" "$q2"
	assert_equal "${#lines[@]}" 2
	[[ ${lines[0]} == 4242858000010001* ]]	# bob: NOERROR, one answer
	[[ ${lines[1]} == 4242818200010000* ]]	# stalled: SERVFAIL
}

@test "malformed packets: silence for junk and responses, FORMERR and NOTIMP otherwise" {
	start_md md -c "$MESH" -u none
	run $PEER send --timeout 0.5 127.0.0.1 "$MDPORT" 0102030405
	assert_output timeout
	q=$($PEER query alice.mesh.example)
	# a response (QR set) is never answered
	run $PEER send --timeout 0.5 127.0.0.1 "$MDPORT" "${q:0:4}8100${q:8}"
	assert_output timeout
	# the question cut short: FORMERR (header only), same ID
	run $PEER send 127.0.0.1 "$MDPORT" "${q:0:30}"
	assert_output 424281810000000000000000
	# two questions announced, one there
	run $PEER send 127.0.0.1 "$MDPORT" "${q:0:8}0002${q:12}"
	assert_output --regexp '^42428181'
	# NOTIFY: NOTIMP
	run $PEER send 127.0.0.1 "$MDPORT" "${q:0:4}2100${q:8}"
	assert_output 4242a1840000000000000000
	# EDNS version 1: BADVERS
	run d +edns=1 +noednsneg alice.mesh.example
	assert_output --partial 'status: BADVERS'
	# over TCP: FORMERR, and junk that is not a query closes it
	run $PEER send --tcp 127.0.0.1 "$MDPORT" "${q:0:30}"
	assert_output 424281810000000000000000
	run $PEER send --tcp 127.0.0.1 "$MDPORT" "${q:0:4}8100${q:8}"
	assert_output closed
	# thousands of random datagrams, and it still answers
	run $PEER random 127.0.0.1 "$MDPORT" 3000 magicdns
	assert_success
	run d +short alice.mesh.example
	assert_output 100.64.0.1
	kill -0 "$(bg_pid md)"
}

@test "SIGHUP adds a node; a broken file keeps the old names; no query lost meanwhile" {
	start_md md -c "$MESH" -u none
	run d +short dave.mesh.example
	refute_output --partial 100.64
	echo "node dave $K_DAVE 100.64.0.4" >>"$MESH"
	kill -HUP "$(bg_pid md)"
	wait_log md 'reloaded \(SIGHUP\): 4 names'
	run d +short dave.mesh.example
	assert_output 100.64.0.4
	# a file that no longer parses: reported, old names kept
	echo 'node eve' >>"$MESH"
	kill -HUP "$(bg_pid md)"
	wait_log md 'reload \(SIGHUP\) failed, keeping the old names: .*mesh.conf:7'
	run d +short dave.mesh.example
	assert_output 100.64.0.4
	sed -i '$d' "$MESH"
	# 2000 queries while it reloads over and over: every one answered
	( for _ in $(seq 40); do kill -HUP "$(bg_pid md)"; sleep 0.01; done ) &
	hup=$!
	run $PEER burst --timeout 3 --window 50 127.0.0.1 "$MDPORT" \
		alice.mesh.example 2000
	wait "$hup"
	assert_output 2000
}

@test "the file changing on disk is noticed without a signal (rename and in place)" {
	start_md md -c "$MESH" -u none
	cp "$MESH" "$MESH.new"
	echo "node dave $K_DAVE 100.64.0.4" >>"$MESH.new"
	mv "$MESH.new" "$MESH"
	wait_log md 'reloaded \(file changed\): 4 names'
	run d +short dave.mesh.example
	assert_output 100.64.0.4
	# in place: the same file truncated and written again
	sed 's/100\.64\.0\.4/100.64.0.44/' "$MESH" >"$MESH.tmp"
	cat "$MESH.tmp" >"$MESH"
	for _ in $(seq 50); do
		[ "$(d +short dave.mesh.example)" = 100.64.0.44 ] && break
		sleep 0.1
	done
	run d +short dave.mesh.example
	assert_output 100.64.0.44
}

@test "SIGTERM: a clean exit, status 0; SIGUSR1 logs counters" {
	start_md md -c "$MESH" -u none
	d +short alice.mesh.example >/dev/null
	kill -USR1 "$(bg_pid md)"
	wait_log md 'queries 1, local 1, forwarded 0'
	kill -TERM "$(bg_pid md)"
	rc=0
	wait "$(bg_pid md)" || rc=$?
	assert_equal "$rc" 0
}
