#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# wgsetup behind the lab's NATs (tests/lab/lab.sh), on wireguard-go, with
# only wireguard-go on its PATH. Endpoints are set by hand here (finding
# them is punch's job):
#
#   h-eim1 10.1.0.2 --[eim1 198.18.1.1]--+
#                                        +-- inet --- pub 198.18.0.30
#   h-eim2 10.2.0.2 --[eim2 198.18.1.2]--+
#
# Tunnel 10.66.0.0/24: h-eim1 .1, h-eim2 .2, pub .3 (joins with set). The
# routers filter address-and-port-dependently, so a path opens only when
# both sides send to each other's public ip:port (persistent keepalive 1).

load helpers
load wgsetup-helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkwl$$ IFP=wl$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	wg_path_setup
	wg_keys a b p
}

teardown_file() {
	local h
	for h in h-eim1 h-eim2 pub; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" 2>/dev/null || true
	done
	wg_cleanup "$IFP"
	"$LAB" down
}

teardown() {
	bg_stop_all
}

ifc() {
	case $1 in
	h-eim1) echo "${IFP}a" ;;
	h-eim2) echo "${IFP}b" ;;
	pub) echo "${IFP}p" ;;
	esac
}

# W HOST ARGS...: wgsetup on a lab host
W() {
	local h=$1
	shift
	"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" "$@"
}

# conf NAME ADDR PEER ENDPOINT PEERADDR [PEER ENDPOINT PEERADDR]...
conf() {
	local n=$1 addr=$2
	shift 2
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = %s/24\n' \
			"$(cat "$KEYS/$n.key")" "$addr"
		while [ $# -ge 3 ]; do
			printf '\n[Peer]\nPublicKey = %s\nEndpoint = %s\nAllowedIPs = %s/32\nPersistentKeepalive = 1\n' \
				"$(cat "$KEYS/$1.pub")" "$2" "$3"
			shift 3
		done
	} >"$BATS_FILE_TMPDIR/$n.conf"
	echo "$BATS_FILE_TMPDIR/$n.conf"
}

pings() {
	"$LAB" exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1
}

@test "two hosts behind different NATs ping each other through the tunnel" {
	run W h-eim1 up "$(ifc h-eim1)" "$(conf a 10.66.0.1 b "$EIM2_WAN:51820" 10.66.0.2)"
	assert_success
	run W h-eim2 up "$(ifc h-eim2)" "$(conf b 10.66.0.2 a "$EIM1_WAN:51820" 10.66.0.1)"
	assert_success
	wait_for 15 pings h-eim1 10.66.0.2
	wait_for 5 pings h-eim2 10.66.0.1
	# direct between the two public addresses, each NAT keeping the port
	run "$LAB" exec eim1 conntrack -L -p udp --orig-src "$H_EIM1_IP" --orig-dst "$EIM2_WAN"
	assert_output --partial "sport=51820 dport=51820"
	run "$LAB" exec h-eim1 wg show "$(ifc h-eim1)" latest-handshakes
	[ "$(cut -f 2 <<<"$output")" -gt 0 ]
	# live counters, and still the same dump as wg's
	dump_agrees "$LAB exec h-eim1" "$(ifc h-eim1)"
}

@test "a third host joins with set" {
	# h-eim1 routes it (-t main), h-eim2 does as wg set does: no route,
	# its /24 covers 10.66.0.3
	run W h-eim1 set -t main "$(ifc h-eim1)" peer "$(cat "$KEYS/p.pub")" endpoint "$PUB_IP:51820" \
		allowed-ips 10.66.0.3/32 keepalive 1
	assert_success
	run W h-eim2 set "$(ifc h-eim2)" peer "$(cat "$KEYS/p.pub")" endpoint "$PUB_IP:51820" \
		allowed-ips 10.66.0.3/32 keepalive 1
	assert_success
	run W pub up "$(ifc pub)" "$(conf p 10.66.0.3 a "$EIM1_WAN:51820" 10.66.0.1 b "$EIM2_WAN:51820" 10.66.0.2)"
	assert_success
	wait_for 15 pings pub 10.66.0.1
	wait_for 15 pings pub 10.66.0.2
	wait_for 5 pings h-eim1 10.66.0.3
	wait_for 5 pings h-eim2 10.66.0.3
	# the old pair is still fine
	pings h-eim1 10.66.0.2
	run "$LAB" exec h-eim1 ip -j route show dev "$(ifc h-eim1)" proto 109
	assert_equal "$(jq -r '.[].dst' <<<"$output" | sort)" "$(printf '10.66.0.2\n10.66.0.3')"
	run "$LAB" exec h-eim2 ip -j route show dev "$(ifc h-eim2)" proto 109
	assert_equal "$(jq -r '.[].dst' <<<"$output")" 10.66.0.1
}

@test "endpoints moves a peer's endpoint from stdin" {
	# pub moves to another port: h-eim1's NAT drops what comes from there
	# until h-eim1 itself sends to it, so only a moved endpoint heals it
	run W pub set "$(ifc pub)" listen-port 51830
	assert_success
	run pings h-eim1 10.66.0.3
	assert_failure
	run W h-eim1 endpoints "$(ifc h-eim1)" <<<"$(cat "$KEYS/p.pub") $PUB_IP:51830"
	assert_success
	run "$LAB" exec h-eim1 wg show "$(ifc h-eim1)" endpoints
	assert_line "$(cat "$KEYS/p.pub")	$PUB_IP:51830"
	wait_for 10 pings h-eim1 10.66.0.3
	# pub follows h-eim1 from its packets (WireGuard roaming)
	run "$LAB" exec pub wg show "$(ifc pub)" endpoints
	assert_line "$(cat "$KEYS/a.pub")	$EIM1_WAN:51820"
}

@test "up --mesh on two NATed hosts, endpoints from stdin, ping by mesh address" {
	local m=$BATS_FILE_TMPDIR/mesh.conf
	cat >"$m" <<EOF
domain mesh.test
node a $(cat "$KEYS/a.pub") 100.64.0.1 fd7a:115c:a1e0::1
node b $(cat "$KEYS/b.pub") 100.64.0.2 fd7a:115c:a1e0::2
EOF
	# the lab's hosts run without IPv6: those addresses are left out
	run --separate-stderr W h-eim1 up "${IFP}ma" --mesh "$m" --key "$KEYS/a.key" -p 41641
	assert_success
	assert_equal "$stderr" "wgsetup: ${IFP}ma: IPv6 is disabled here: IPv6 addresses and routes left out"
	run W h-eim2 up "${IFP}mb" --mesh "$m" --key "$KEYS/b.key" -p 41641
	assert_success
	# WireGuard still carries both families for each peer
	run "$LAB" exec h-eim1 wg show "${IFP}ma" allowed-ips
	assert_output "$(cat "$KEYS/b.pub")	100.64.0.2/32 fd7a:115c:a1e0::2/128"
	# endpoints by hand, as something that found them would print them
	run W h-eim1 endpoints "${IFP}ma" <<<"$(cat "$KEYS/b.pub") $EIM2_WAN:41641"
	assert_success
	run W h-eim2 endpoints "${IFP}mb" <<<"$(cat "$KEYS/a.pub") $EIM1_WAN:41641"
	assert_success
	# no keepalive in mesh mode: the first packets open each NAT for
	# the other side's retry (WireGuard retries a handshake after 5 s)
	wait_for 20 "pings h-eim1 100.64.0.2 || pings h-eim2 100.64.0.1"
	wait_for 10 pings h-eim1 100.64.0.2
	wait_for 10 pings h-eim2 100.64.0.1
	run W h-eim1 down "${IFP}ma"
	assert_success
	run W h-eim2 down "${IFP}mb"
	assert_success
	wg_gone "${IFP}ma" "$("$LAB" ns h-eim1)"
	wg_gone "${IFP}mb" "$("$LAB" ns h-eim2)"
}

@test "down on every host leaves nothing behind" {
	local h
	for h in h-eim1 h-eim2 pub; do
		run W "$h" down "$(ifc "$h")"
		assert_success
		wg_gone "$(ifc "$h")" "$("$LAB" ns "$h")"
		run "$LAB" exec "$h" ip -j route
		refute_output --partial 10.66.0
	done
	run pings h-eim1 10.66.0.2
	assert_failure
}
