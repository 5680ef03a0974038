#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# derpcat in the NAT lab (tests/lab/lab.sh): a relay on TCP 443 on the
# fake internet's relay host, clients behind a router that lets only TCP
# 443 out and behind an endpoint-dependent NAT, an HTTPS proxy (tinyproxy)
# and the relay's own STUN port.

load helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkd$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	local d=$BATS_FILE_TMPDIR
	export KEYS=$d/keys
	mkdir -p "$KEYS"
	"$TOP/tests/tools/derpcat-keygen" "$KEYS" a b c d
	# the relay: TLS on 443 with a self-signed certificate kept in
	# --state, STUN on 3478, both on every address of the relay host
	lab_relay_start
	head -c 1000000 /dev/urandom >"$d/file.a"
	head -c 300000 /dev/urandom >"$d/file.b"
}

teardown_file() {
	lab_relay_stop
	"$LAB" down
}

teardown() {
	bg_stop_all
	# a sanitizer report from a background process fails the test too
	! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
		"$BATS_TEST_TMPDIR"/*.log "$BATS_TEST_TMPDIR"/*.err 2>/dev/null
}

pub() { cat "$KEYS/$1.pub"; }

# dc HOST ARGS...: derpcat inside a lab host
dc() {
	local h=$1; shift
	"$LAB" exec "$h" "$MK_BIN/derpcat" "$@"
}

wait_pid() {
	local pid=$1 limit=${2:-30} i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le $((limit * 20)) ] || { echo "pid $pid still running" >&2; return 124; }
		sleep 0.05
	done
	wait "$pid"
}

@test "h-block cannot use UDP at all: STUN to the relay gets no answer" {
	run -3 --separate-stderr "$LAB" exec h-block "$MK_BIN/stunq" -t 1 "$RELAY_IP"
}

@test "the relay's STUN port answers from behind an EIM NAT" {
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/stunq" -p 40000 "$RELAY_IP"
	assert_success
	assert_output "$EIM1_WAN:40000"
}

@test "behind the UDP-blocked router and behind an EDM NAT: data both ways through the relay on 443" {
	t=$BATS_TEST_TMPDIR
	dc h-block -N -k "$KEYS/a.key" --pin "$PIN" "$RELAY" "$(pub b)" \
		<"$BATS_FILE_TMPDIR/file.a" >"$t/a.out" 2>"$t/a.err" &
	pa=$!
	dc h-edm1 -N -k "$KEYS/b.key" --pin "$PIN" "$RELAY" "$(pub a)" \
		<"$BATS_FILE_TMPDIR/file.b" >"$t/b.out" 2>"$t/b.err" &
	pb=$!
	wait_pid "$pa" 60 || { cat "$t/a.err" >&2; false; }
	wait_pid "$pb" 60 || { cat "$t/b.err" >&2; false; }
	assert_equal "$(sha256sum <"$t/b.out")" "$(sha256sum <"$BATS_FILE_TMPDIR/file.a")"
	assert_equal "$(sha256sum <"$t/a.out")" "$(sha256sum <"$BATS_FILE_TMPDIR/file.b")"
	# the relay saw them from their routers' public addresses
	grep -q "$BLOCK_WAN:[0-9]*: $(pub a | sed 's/[+/]/./g') connected" "$BATS_FILE_TMPDIR/relay.log"
	grep -q "$EDM1_WAN:[0-9]*: $(pub b | sed 's/[+/]/./g') connected" "$BATS_FILE_TMPDIR/relay.log"
}

@test "HTTPS_PROXY: a client behind the blocking router goes through a CONNECT proxy (tinyproxy)" {
	t=$BATS_TEST_TMPDIR
	mkdir -p "$t/tp"
	# no LogFile: in the foreground it logs to stdout (bg_log), and
	# user nobody could not write under the test's directory anyway
	cat >"$t/tp/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port 443
Listen $PUB_IP
Timeout 60
MaxClients 20
Allow $BLOCK_WAN
ConnectPort 443
LogLevel Connect
EOF
	bg_start tinyproxy "$LAB" exec pub tinyproxy -d -c "$t/tp/tinyproxy.conf"
	i=0
	until "$LAB" exec h-block bash -c "exec 3<>/dev/tcp/$PUB_IP/443" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { bg_log tinyproxy >&2; false; }
		sleep 0.05
	done
	"$LAB" exec h-block env HTTPS_PROXY="http://$PUB_IP:443" "$MK_BIN/derpcat" -N -v \
		-k "$KEYS/c.key" --pin "$PIN" "$RELAY" "$(pub d)" \
		<"$BATS_FILE_TMPDIR/file.b" >/dev/null 2>"$t/c.err" &
	pc=$!
	timeout 60 "$LAB" exec h-edm1 "$MK_BIN/derpcat" -k "$KEYS/d.key" --pin "$PIN" "$RELAY" "$(pub c)" \
		</dev/null >"$t/d.out"
	assert_equal "$(sha256sum <"$t/d.out")" "$(sha256sum <"$BATS_FILE_TMPDIR/file.b")"
	wait_pid "$pc" 30
	grep -q 'through the proxy' "$t/c.err"
	# the relay saw c come from the proxy's address, not the router's
	grep -q "$PUB_IP:[0-9]*: $(pub c | sed 's/[+/]/./g') connected" "$BATS_FILE_TMPDIR/relay.log"
	bg_log tinyproxy | grep -q "CONNECT.*$RELAY_IP:443"
	# a proxy that refuses (port 443 only): a clear error, exit 3
	run -3 --separate-stderr timeout 30 "$LAB" exec h-block env HTTPS_PROXY="http://$PUB_IP:443" \
		"$MK_BIN/derpcat" -w 5 -k "$KEYS/c.key" "https://$RELAY_IP:8443" "$(pub d)" </dev/null
	[[ $stderr == *'proxy refused CONNECT: 403'* ]] || [[ $stderr == *'could not connect'* ]]
}
