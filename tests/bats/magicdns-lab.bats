#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# magicdns in the lab (tests/lab/lab.sh): on its own 100.100.100.100 in the
# `pub` host, forwarding to dnsmasq on `stun2` and to unbound's DNS over
# HTTPS on `relay`; sources it must not answer; and taking over the
# resolv.conf of pub's namespace (/etc/netns/NS/resolv.conf, which ip netns
# exec mounts over /etc/resolv.conf) and giving it back. The host's own
# /etc/resolv.conf is checked to be untouched.

load helpers

PEER="$PY $TOP/tests/tools/magicdns-peer.py"
K_ALICE=MtKQzyro/AMZEQQL80W95vd9+lxfT+a3vAwzAi0/G0A=
K_BOB=/tmnrig5drjnAWRblBuJnH0NX0F2YVV3tRcjLvOOriU=

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkd$$
	export HOST_RESOLV_SUM
	HOST_RESOLV_SUM=$(sha256sum </etc/resolv.conf)
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	export F=$BATS_FILE_TMPDIR
	export NETNS_DIR=/etc/netns/$LAB_PREFIX-pub

	cat >"$F/mesh.conf" <<EOF
domain mesh.example
node alice $K_ALICE 100.64.0.1 fd7a:115c:a1e0::1
node bob $K_BOB 100.64.0.2
EOF
	# pub's own resolv.conf and hosts (ip netns exec mounts them)
	mkdir -p "$NETNS_DIR"
	printf '# the lab host pub\nnameserver %s\nsearch example.org\noptions ndots:1 timeout:1\n' \
		"$STUN2_IP" >"$NETNS_DIR/resolv.conf"
	chmod 0640 "$NETNS_DIR/resolv.conf"
	cp "$NETNS_DIR/resolv.conf" "$F/resolv.orig"
	printf '127.0.0.1 localhost\n%s doh.lab.test\n' "$RELAY_IP" >"$NETNS_DIR/hosts"

	# dnsmasq on stun2: a name, and a TXT record too big for UDP
	local big
	big=$(printf 'x%.0s' $(seq 250))
	big="$big,$big,$big,$big,$big,$big,$big,$big,$big,$big,$big,$big"
	"$LAB" exec stun2 dnsmasq -d --no-resolv --no-hosts --log-queries \
		--pid-file= --listen-address="$STUN2_IP" --bind-interfaces \
		--address=/fwd.test/192.0.2.55 --txt-record=big.fwd.test,"$big" \
		>"$F/dnsmasq.log" 2>&1 &
	echo $! >"$F/dnsmasq.pid"
	# count TCP connections to it, on the wire; "stall" is where a test
	# drops its UDP to make it a stalled upstream
	"$LAB" exec stun2 nft -f - <<'EOF'
table inet mdtest {
	counter tcp53 { }
	chain in {
		type filter hook input priority 0;
		tcp dport 53 tcp flags & (syn | ack) == syn counter name tcp53
	}
	chain stall {
		type filter hook input priority -10;
	}
}
EOF
	# and TCP connections to the DoH server
	"$LAB" exec relay nft -f - <<'EOF'
table inet mdtest {
	counter tcp443 { }
	chain in {
		type filter hook input priority 0;
		tcp dport 443 tcp flags & (syn | ack) == syn counter name tcp443
	}
}
EOF
	# unbound on relay: DNS over HTTPS only, a test certificate
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$F/key.pem" -out "$F/cert.pem" -days 2 \
		-subj /CN=doh.lab.test \
		-addext "subjectAltName=IP:$RELAY_IP,DNS:doh.lab.test" 2>/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$F/other-key.pem" -out "$F/other.pem" -days 2 \
		-subj /CN=other 2>/dev/null
	cat >"$F/unbound.conf" <<EOF
server:
	username: ""
	chroot: ""
	directory: "$F"
	pidfile: "$F/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	extended-statistics: yes
	num-threads: 1
	interface: $RELAY_IP@443
	https-port: 443
	tls-service-key: "$F/key.pem"
	tls-service-pem: "$F/cert.pem"
	access-control: 0.0.0.0/0 allow
	do-ip6: no
	module-config: "iterator"
	local-zone: "doh.test." static
	local-data: "www.doh.test. 60 IN A 192.0.2.80"
remote-control:
	control-enable: yes
	control-use-cert: no
	control-interface: "$F/control.sock"
EOF
	"$LAB" exec relay unbound -d -c "$F/unbound.conf" >"$F/unbound.log" 2>&1 &
	echo $! >"$F/unbound.pid.bg"

	local i=0
	until "$LAB" exec pub dig +short +time=1 +tries=1 "@$STUN2_IP" \
		www.fwd.test 2>/dev/null | grep -q 192.0.2.55; do
		i=$((i + 1))
		[ $i -lt 50 ] || { cat "$F/dnsmasq.log" >&2; return 1; }
		sleep 0.1
	done
	i=0
	until "$LAB" exec relay unbound-control -c "$F/unbound.conf" status \
		>/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 50 ] || { cat "$F/unbound.log" >&2; return 1; }
		sleep 0.1
	done
}

teardown_file() {
	local p
	for p in dnsmasq.pid unbound.pid.bg; do
		p=$(cat "$F/$p" 2>/dev/null) && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
	done
	"$LAB" down
	rm -rf "$NETNS_DIR"
	# whatever happened, the host's resolv.conf must be as it was
	[ "$(sha256sum </etc/resolv.conf)" = "$HOST_RESOLV_SUM" ] ||
		{ echo "THE HOST'S /etc/resolv.conf CHANGED" >&2; return 1; }
}

setup() {
	cp "$F/resolv.orig" "$NETNS_DIR/resolv.conf"
	chmod 0640 "$NETNS_DIR/resolv.conf"
	STATE=$BATS_TEST_TMPDIR/state
}

teardown() {
	bg_stop_all
	"$LAB" exec pub ip addr del 100.100.100.100/32 dev lo 2>/dev/null || true
	"$LAB" exec stun2 nft flush chain inet mdtest stall
	if grep -l -e 'Sanitizer' -e 'runtime error' "$BATS_TEST_TMPDIR"/*.log \
		2>/dev/null; then
		cat "$BATS_TEST_TMPDIR"/*.log >&2
		return 1
	fi
}

# md NAME HOST ARGS...: magicdns in a lab host, in the background, ready.
md() {
	local name=$1 host=$2; shift 2
	bg_start "$name" "$LAB" exec "$host" "$MK_BIN/magicdns" -c "$F/mesh.conf" \
		--state-dir "$STATE" "$@"
	wait_log "$name" '^magicdns: ready' 10
}

# at HOST ARGS...: dig in a lab host, one try.
at() {
	local h=$1; shift
	"$LAB" exec "$h" dig +time=3 +tries=1 "$@"
}

lo_addrs() {
	"$LAB" exec pub ip -br addr show dev lo
}

resolv_same() {
	cmp "$F/resolv.orig" "$NETNS_DIR/resolv.conf" &&
		[ "$(stat -c %a "$NETNS_DIR/resolv.conf")" = 640 ]
}

# syns HOST COUNTER: TCP connections counted by the host's nft counter.
syns() {
	"$LAB" exec "$1" nft list counter inet mdtest "$2" |
		sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

@test "by default on 100.100.100.100:53, added to lo and removed on exit" {
	run lo_addrs
	refute_output --partial 100.100.100.100
	md m pub -u "$STUN2_IP" -l 100.100.100.100 -l '[fd7a:115c:a1e0::53]'
	run lo_addrs
	assert_output --partial 100.100.100.100/32
	assert_output --partial fd7a:115c:a1e0::53/128
	run at pub +short @100.100.100.100 alice.mesh.example
	assert_output 100.64.0.1
	run at pub +short +tcp @fd7a:115c:a1e0::53 bob.mesh.example
	assert_output 100.64.0.2
	kill "$(bg_pid m)"
	wait "$(bg_pid m)"
	run lo_addrs
	refute_output --partial 100.100.100.100
	refute_output --partial fd7a:115c:a1e0::53
}

@test "an address lo already had is used and left in place" {
	"$LAB" exec pub ip addr add 100.100.100.100/32 dev lo
	md m pub -u "$STUN2_IP"
	run at pub +short @100.100.100.100 alice.mesh.example
	assert_output 100.64.0.1
	kill "$(bg_pid m)"
	wait "$(bg_pid m)"
	run lo_addrs
	assert_output --partial 100.100.100.100/32
}

@test "on a wildcard address, answers leave from the address asked" {
	md m pub -u "$STUN2_IP:5399" -l 0.0.0.0:5300 -a "$STUN2_IP/32"
	# 127.0.0.2: dig asks from 127.0.0.1, so an answer sent without the
	# address asked would leave from 127.0.0.1 and dig would refuse it
	for a in 127.0.0.1 127.0.0.2 "$PUB_IP"; do
		run at pub -p 5300 "@$a" alice.mesh.example
		assert_output --partial 'status: NOERROR'
		refute_output --partial 'unexpected source'
		# and an answer that comes later, from the forwarder
		run at pub -p 5300 "@$a" www.fwd.test
		assert_output --partial 'status: SERVFAIL'
		refute_output --partial 'unexpected source'
	done
	run at stun2 -p 5300 "@$PUB_IP" +short bob.mesh.example
	assert_output 100.64.0.2
}

@test "forwarding to dnsmasq over the lab; a big answer goes over TCP on the wire" {
	md m pub -u "$STUN2_IP"
	run at pub +short @100.100.100.100 www.fwd.test
	assert_output 192.0.2.55
	before=$(syns stun2 tcp53)
	run at pub @100.100.100.100 +bufsize=4096 big.fwd.test TXT
	assert_output --partial 'status: NOERROR'
	assert_output --regexp 'MSG SIZE  rcvd: 3[0-9]{3}'
	after=$(syns stun2 tcp53)
	[ "$after" -gt "$before" ]
	# a client without EDNS: told to use TCP, and gets it all there
	run at pub @100.100.100.100 +noedns big.fwd.test TXT
	assert_output --partial 'Truncated, retrying in TCP mode'
	assert_output --partial 'ANSWER: 1,'
}

@test "SERVFAIL when the upstream is gone, at once for a refused port, after 2 s for silence" {
	md m pub -u "$STUN2_IP:5399"
	t0=$(date +%s%3N)
	run at pub @100.100.100.100 www.fwd.test
	assert_output --partial 'status: SERVFAIL'
	[ $(($(date +%s%3N) - t0)) -lt 1500 ]
	# dnsmasq's port, but everything to it dropped: a stalled upstream
	"$LAB" exec stun2 nft add rule inet mdtest stall udp dport 53 drop
	md m2 pub -u "$STUN2_IP" -l 127.0.0.1:5353
	t0=$(date +%s%3N)
	"$LAB" exec pub dig -p 5353 +time=4 +tries=1 @127.0.0.1 www.fwd.test \
		>"$BATS_TEST_TMPDIR/slow.out" &
	slow=$!
	# meanwhile a mesh name comes back at once
	run at pub -p 5353 +short @127.0.0.1 bob.mesh.example
	assert_output 100.64.0.2
	[ $(($(date +%s%3N) - t0)) -lt 1000 ]
	wait "$slow"
	t1=$(date +%s%3N)
	grep -q 'status: SERVFAIL' "$BATS_TEST_TMPDIR/slow.out"
	[ $((t1 - t0)) -ge 1900 ]
}

@test "not an open resolver: other sources get nothing, over UDP or TCP; --allow widens" {
	md m pub -u "$STUN2_IP" -l "$PUB_IP"
	run at stun2 +short @"$PUB_IP" alice.mesh.example
	assert_output --partial 'timed out'
	run "$LAB" exec stun2 $PEER send --tcp --timeout 2 "$PUB_IP" 53 \
		"$($PEER query alice.mesh.example)"
	assert_output closed
	# its own addresses are local: allowed
	run at pub +short @"$PUB_IP" alice.mesh.example
	assert_output 100.64.0.1
	kill -USR1 "$(bg_pid m)"
	wait_log m 'refused [1-9]'
	md m2 pub -u "$STUN2_IP" -l "$PUB_IP:5353" -a "$STUN2_IP/32"
	run at stun2 -p 5353 +short @"$PUB_IP" alice.mesh.example
	assert_output 100.64.0.1
}

@test "a per-source rate limit for UDP" {
	md m pub -u none -l "$PUB_IP" -a "$STUN2_IP/32" --rate 10
	run "$LAB" exec stun2 $PEER burst "$PUB_IP" 53 alice.mesh.example 200
	assert_success
	# a burst of 2 x 10, and what trickles in while it is sent
	[ "$output" -ge 15 ] && [ "$output" -le 40 ]
	kill -USR1 "$(bg_pid m)"
	wait_log m 'rate-limited (1[6-9][0-9])'
	# this host's own queries (from its own address) are never limited
	run "$LAB" exec pub $PEER burst --window 50 "$PUB_IP" 53 \
		alice.mesh.example 300
	assert_output 300
	# nor is loopback
	md m2 pub -u none -l 127.0.0.1:5353 --rate 10
	run "$LAB" exec pub $PEER burst --window 50 127.0.0.1 5353 \
		alice.mesh.example 500
	assert_output 500
}

@test "the per-source rate limit counts TCP too: a source over it is cut off" {
	md m pub -u none -l "$PUB_IP" -a "$STUN2_IP/32" --rate 10 -vv
	q=$($PEER query alice.mesh.example)
	msgs=()
	for _ in $(seq 200); do
		msgs+=("$q")
	done
	# 200 queries in one write: the burst of 20 answered, then closed
	run "$LAB" exec stun2 $PEER send --tcp --timeout 5 "$PUB_IP" 53 "${msgs[@]}"
	assert_success
	assert_line --index $((${#lines[@]} - 1)) closed
	[ "${#lines[@]}" -ge 11 ] && [ "${#lines[@]}" -le 41 ]
	wait_log m "^magicdns: $STUN2_IP:[0-9]+: dropped by the rate limit; connection closed$"
	kill -USR1 "$(bg_pid m)"
	wait_log m 'rate-limited [1-9]'
	# this host's own TCP queries are never limited
	run "$LAB" exec pub $PEER send --tcp --timeout 5 "$PUB_IP" 53 "${msgs[@]}"
	assert_equal "${#lines[@]}" 200
	refute_output --partial closed
}

@test "DNS over HTTPS to unbound: the queries arrive over HTTPS, multiplexed" {
	ub() { "$LAB" exec relay unbound-control -c "$F/unbound.conf" "$@"; }
	before=$(ub stats_noreset | sed -n 's/^num.query.https=//p')
	conns=$(syns relay tcp443)
	md m pub -u https://doh.lab.test/dns-query --cacert "$F/cert.pem" -v
	wait_log m 'doh.lab.test is 198.18.0.20'
	run at pub +short @100.100.100.100 www.doh.test
	assert_output 192.0.2.80
	run at pub +short +tcp @100.100.100.100 www.doh.test
	assert_output 192.0.2.80
	pids=()
	for i in 1 2 3 4 5 6 7 8; do
		at pub +short @100.100.100.100 "n$i.doh.test" >/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}"
	after=$(ub stats_noreset | sed -n 's/^num.query.https=//p')
	[ $((after - before)) -ge 10 ]
	# ten queries, HTTP/2 streams on at most two connections
	[ $(($(syns relay tcp443) - conns)) -le 2 ]
	# the mesh names never leave
	run at pub +short @100.100.100.100 alice.mesh.example
	assert_output 100.64.0.1
	[ "$(ub stats_noreset | sed -n 's/^num.query.https=//p')" = "$after" ]
	kill -USR1 "$(bg_pid m)"
	wait_log m 'doh 1[0-9]'
}

@test "DNS over HTTPS with a certificate that is not trusted: SERVFAIL" {
	md m pub -u "https://$RELAY_IP/dns-query" --cacert "$F/other.pem" -v
	run at pub @100.100.100.100 www.doh.test
	assert_output --partial 'status: SERVFAIL'
	wait_log m 'upstream https://198.18.0.20/dns-query: .*certificate'
}

@test "--install: getent in the namespace resolves mesh names and forwards the rest; exit restores it" {
	md m pub --install
	run head -n 1 "$NETNS_DIR/resolv.conf"
	assert_output --partial '# generated by magicdns'
	grep -qx 'nameserver 100.100.100.100' "$NETNS_DIR/resolv.conf"
	grep -qx 'search mesh.example example.org' "$NETNS_DIR/resolv.conf"
	grep -qx 'options ndots:1 timeout:1' "$NETNS_DIR/resolv.conf"
	[ "$(stat -c %a "$NETNS_DIR/resolv.conf")" = 640 ]
	run "$LAB" exec pub getent hosts alice
	assert_output --regexp '^(100\.64\.0\.1|fd7a:115c:a1e0::1) +alice\.mesh\.example$'
	# a short name through the search list, as dig +search does it
	run at pub +search +short alice
	assert_output 100.64.0.1
	run "$LAB" exec pub getent ahostsv4 bob.mesh.example
	assert_line --index 0 --regexp '^100\.64\.0\.2 '
	# not a mesh name: the original resolv.conf's nameserver (dnsmasq)
	run "$LAB" exec pub getent hosts www.fwd.test
	assert_output --regexp '^192\.0\.2\.55 +www\.fwd\.test$'
	kill "$(bg_pid m)"
	wait "$(bg_pid m)"
	resolv_same
	[ ! -e "$STATE/resolv.conf.$LAB_PREFIX-pub" ]
	run lo_addrs
	refute_output --partial 100.100.100.100
}

@test "after a crash, --uninstall restores byte for byte; a second finds nothing (exit 1)" {
	md m pub --install
	kill -KILL "$(bg_pid m)"
	wait "$(bg_pid m)" || true
	run grep -c 'magicdns' "$NETNS_DIR/resolv.conf"
	[ "$output" -ge 1 ]
	run "$LAB" exec pub "$MK_BIN/magicdns" --uninstall --state-dir "$STATE"
	assert_success
	resolv_same
	run "$LAB" exec pub "$MK_BIN/magicdns" --uninstall --state-dir "$STATE"
	assert_failure 1
	resolv_same
}

@test "after a crash, --install again keeps the real original and forwards to its servers" {
	md m pub --install
	kill -KILL "$(bg_pid m)"
	wait "$(bg_pid m)" || true
	"$LAB" exec pub ip addr del 100.100.100.100/32 dev lo
	md m2 pub --install
	run "$LAB" exec pub getent hosts www.fwd.test
	assert_output --regexp '^192\.0\.2\.55 '
	kill "$(bg_pid m2)"
	wait "$(bg_pid m2)"
	resolv_same
}

@test "--user: serves unprivileged; the root parent restores all, even when the server is killed" {
	md m pub --install --user nobody
	pid=$(bg_pid m)
	child=$(pgrep -P "$pid" -x magicdns)
	[ "$(ps -o user= -p "$child")" = nobody ]
	[ "$(ps -o user= -p "$pid")" = root ]
	run "$LAB" exec pub getent hosts alice.mesh.example
	assert_success
	kill -KILL "$child"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 3
	resolv_same
	run lo_addrs
	refute_output --partial 100.100.100.100
	# and a plain SIGTERM to the parent: a clean exit
	md m2 pub --install --user nobody
	kill "$(bg_pid m2)"
	rc=0
	wait "$(bg_pid m2)" || rc=$?
	assert_equal "$rc" 0
	resolv_same
}

@test "a state directory another user owns or can write is refused; resolv.conf untouched" {
	mkdir -m 0700 "$STATE"
	chmod 0777 "$STATE"
	# (bounded: a magicdns that took the directory would serve on)
	run timeout 10 "$LAB" exec pub "$MK_BIN/magicdns" -c "$F/mesh.conf" \
		-u none --state-dir "$STATE" --install
	assert_failure 3
	assert_output --partial "state directory $STATE: $STATE is writable by anyone; refusing it"
	resolv_same
	run lo_addrs
	refute_output --partial 100.100.100.100
	# a backup planted there is not put in place by --uninstall
	printf 'nameserver 203.0.113.66\n' >"$STATE/resolv.conf.$LAB_PREFIX-pub"
	run "$LAB" exec pub "$MK_BIN/magicdns" --uninstall --state-dir "$STATE"
	assert_failure 3
	assert_output --partial 'refusing it'
	resolv_same
	# owned by someone else, even if only they can write it
	chmod 0755 "$STATE"
	chown nobody "$STATE"
	run "$LAB" exec pub "$MK_BIN/magicdns" --uninstall --state-dir "$STATE"
	assert_failure 3
	assert_output --partial "belongs to uid $(id -u nobody), not to root or this user"
	resolv_same
	rm -rf "$STATE"
}

@test "the restored resolv.conf keeps its own owner and mode, never the backup's" {
	md m pub --install
	kill -KILL "$(bg_pid m)"
	wait "$(bg_pid m)" || true
	backup=$STATE/resolv.conf.$LAB_PREFIX-pub
	[ "$(stat -c %a "$backup")" = 600 ]
	# whoever got to own the backup does not get to own resolv.conf
	chown nobody:nogroup "$backup"
	chmod 0666 "$backup"
	run "$LAB" exec pub "$MK_BIN/magicdns" --uninstall --state-dir "$STATE"
	assert_success
	resolv_same
	[ "$(stat -c %U:%G "$NETNS_DIR/resolv.conf")" = root:root ]
}

@test "a resolv.conf rewritten by someone else meanwhile is left alone, with the backup" {
	md m pub --install
	echo 'nameserver 192.0.2.1' >"$NETNS_DIR/resolv.conf"
	kill "$(bg_pid m)"
	wait "$(bg_pid m)"
	grep -q 'changed by someone else' "$BATS_TEST_TMPDIR/m.log"
	run cat "$NETNS_DIR/resolv.conf"
	assert_output 'nameserver 192.0.2.1'
	run "$LAB" exec pub "$MK_BIN/magicdns" --uninstall --state-dir "$STATE"
	assert_failure 3
	cmp "$F/resolv.orig" "$STATE/resolv.conf.$LAB_PREFIX-pub"
}

@test "--install refuses a namespace without its own resolv.conf (the host's would change)" {
	run "$LAB" exec stun "$MK_BIN/magicdns" -c "$F/mesh.conf" -u none \
		--state-dir "$STATE" --install
	assert_failure 3
	assert_output --partial "network namespace $LAB_PREFIX-stun has no /etc/netns/$LAB_PREFIX-stun/resolv.conf"
	[ "$(sha256sum </etc/resolv.conf)" = "$HOST_RESOLV_SUM" ]
	run "$LAB" exec stun ip -br addr show dev lo
	refute_output --partial 100.100.100.100
}
