#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch --node carrying WireGuard (wireguard-go) between lab hosts:
#
#   h-eim1 (alice) --[eim1]--+
#                            +-- inet --- relay (derpcat -l, TLS, STUN)
#   h-eim2 (bob)   --[eim2]--+
#   h-edm1 (carol) --[edm1]--+     h-edm2 (dave) --[edm2]--+
#
# WireGuard on each host talks only to punch on 127.0.0.1; punch carries
# its packets over the relay at once and directly once a pong proves a
# path. "Direct" is judged by the routers' conntrack and the relay's
# counters, never by punch's word. Interface names are this file's own:
# wireguard-go's sockets in /run/wireguard are shared by every namespace.

load helpers
load wgsetup-helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkpn$$ IFP=pn$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	wg_path_setup
	wg_keys a b c d
	local d=$BATS_FILE_TMPDIR
	lab_relay_start
	export MESH=$d/mesh.conf
	{
		echo "domain mesh.test"
		echo "relay https://$RELAY_IP $PIN"
		echo "node alice $(cat "$KEYS/a.pub") 100.64.0.1"
		echo "node bob $(cat "$KEYS/b.pub") 100.64.0.2"
		echo "node carol $(cat "$KEYS/c.pub") 100.64.0.3"
		echo "node dave $(cat "$KEYS/d.pub") 100.64.0.4"
	} >"$MESH"
}

teardown_file() {
	local h
	for h in h-eim1 h-eim2 h-edm1 h-edm2 h-block; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
	wg_cleanup "$IFP"
	# the ports punch keeps for these interfaces
	rm -f /var/lib/meshkit/punch-"$IFP"?.port
	# punch's state and status directories, if nothing else is in them
	rmdir /var/lib/meshkit /run/meshkit 2>/dev/null || true
	lab_relay_stop
	"$LAB" down
}

teardown() {
	bg_stop_all
	local h
	for h in h-eim1 h-eim2 h-edm1 h-edm2 h-block; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
}

ifc() {
	case $1 in
	h-eim1) echo "${IFP}a" ;;
	h-eim2) echo "${IFP}b" ;;
	h-edm1) echo "${IFP}c" ;;
	h-edm2) echo "${IFP}d" ;;
	h-block) echo "${IFP}x" ;;
	esac
}

key_of() {
	case $1 in
	h-eim1) echo a ;;
	h-eim2) echo b ;;
	h-edm1) echo c ;;
	h-edm2) echo d ;;
	h-block) echo c ;;
	esac
}

# node HOST: WireGuard up from the mesh file, then punch --node on it
node() {
	local h=$1 k
	k=$(key_of "$h")
	"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"$(ifc "$h")" --mesh "$MESH" --key "$KEYS/$k.key"
	bg_start "punch-$h" "$LAB" exec "$h" "$MK_BIN/punch" -v --node "$MESH" \
		-k "$KEYS/$k.key" --wg "$(ifc "$h")"
}

pings() {
	"$LAB" exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1
}

# replied ROUTER A B: a UDP flow between public addresses A and B that has
# seen a reply (packets crossed the router both ways)
replied() {
	local ct
	ct=$("$LAB" exec "$1" conntrack -L -p udp 2>&1)
	grep -F "=$2 " <<<"$ct" | grep -F "=$3 " | grep -vq UNREPLIED || {
		echo "no replied flow $2 <-> $3 on $1:" >&2
		echo "$ct" >&2
		return 1
	}
}

# relay_packets: how many packets the relay has received in all (its
# SIGUSR1 report)
relay_packets() {
	local p n
	p=$(cat "$BATS_FILE_TMPDIR/relay.pid")
	n=$(grep -c 'packets in' "$BATS_FILE_TMPDIR/relay.log")
	kill -USR1 "$p"
	wait_for 5 '[ "$(grep -c "packets in" "$BATS_FILE_TMPDIR/relay.log")" -gt "$n" ]'
	sed -n 's/.*packets in \([0-9]*\).*/\1/p' "$BATS_FILE_TMPDIR/relay.log" | tail -n 1
}

@test "EIM <-> EIM: pings through the tunnel, over the relay at first, then direct" {
	node h-eim1
	node h-eim2
	wait_for 20 pings h-eim1 100.64.0.2
	# the path event on stdout, with bob's public address
	wait_log punch-h-eim1 "^$(cat "$KEYS/b.pub" | sed 's/[+/]/./g') direct $EIM2_WAN:[0-9]+ " 20
	wait_log punch-h-eim2 "^$(cat "$KEYS/a.pub" | sed 's/[+/]/./g') direct $EIM1_WAN:[0-9]+ " 20
	replied eim1 "$EIM1_WAN" "$EIM2_WAN"
	# direct now: 20 pings (40 WireGuard packets) cross, none of them
	# through the relay (disco may: allow a few)
	n0=$(relay_packets)
	"$LAB" exec h-eim1 ping -c 20 -i 0.05 -W 1 100.64.0.2 >/dev/null
	n1=$(relay_packets)
	[ $((n1 - n0)) -le 4 ] || { echo "the relay carried $((n1 - n0)) packets" >&2; false; }
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)"
	assert_success
	assert_line --regexp '^bob +[^ ]+ direct '"$EIM2_WAN"':[0-9]+ '
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -j -i "$(ifc h-eim1)"
	"$PY" -c 'import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
bob = [r for r in rows if r["name"] == "bob"][0]
assert bob["path"] == "direct" and bob["tx_direct"] >= 20, bob' "$output"
}

@test "EDM <-> EDM: no direct path, the tunnel works over the relay" {
	node h-edm1
	node h-edm2
	wait_for 20 pings h-edm1 100.64.0.4
	n0=$(relay_packets)
	"$LAB" exec h-edm1 ping -c 5 -i 0.2 -W 2 100.64.0.4 >/dev/null
	n1=$(relay_packets)
	# 5 pings and 5 replies, each through the relay
	[ $((n1 - n0)) -ge 10 ] || { echo "the relay carried only $((n1 - n0)) packets" >&2; false; }
	run --separate-stderr "$LAB" exec h-edm1 "$MK_BIN/punch" status -i "$(ifc h-edm1)"
	assert_line --regexp '^dave +[^ ]+ relay https://'
	wait_log punch-h-edm1 "relay https://$RELAY_IP" 5
	run ! grep -q ' direct ' "$BATS_TEST_TMPDIR/punch-h-edm1.log"
}

@test "punch status: a clear error when no node runs for the interface" {
	run -3 --separate-stderr punch status -i nosuch0
	[[ $stderr == *'/run/meshkit/punch-nosuch0.sock'* ]]
	run -2 --separate-stderr punch status
}

@test "a cut direct path falls back to the relay within 10 s, and comes back" {
	node h-eim1
	node h-eim2
	wait_for 20 pings h-eim1 100.64.0.2
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	# the router drops everything between the two public addresses
	"$LAB" exec eim1 nft -f - <<EOF
table inet mkcut {
	chain cut {
		type filter hook forward priority -10;
		ip daddr $EIM2_WAN meta l4proto udp drop
		ip saddr $EIM2_WAN meta l4proto udp drop
	}
}
EOF
	# 26 pings in 13 s: at most 10 s of them lost, and the last ones answered
	run "$LAB" exec h-eim1 ping -c 26 -i 0.5 -W 1 100.64.0.2
	got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$output")
	[ "$got" -ge 6 ] || { echo "$output" >&2; false; }
	grep -q "relay https://$RELAY_IP" "$BATS_TEST_TMPDIR/punch-h-eim1.log"
	grep -Eq 'icmp_seq=(25|26) ' <<<"$output"
	# the path returns: direct again, announced
	n=$(grep -c " direct $EIM2_WAN:" "$BATS_TEST_TMPDIR/punch-h-eim1.log")
	"$LAB" exec eim1 nft delete table inet mkcut
	wait_for 20 '[ "$(grep -c " direct $EIM2_WAN:" "$BATS_TEST_TMPDIR/punch-h-eim1.log")" -gt "$n" ]'
}

# A full-size packet of the tunnel (wgsetup's MTU 1280) with DF set: 1252
# bytes of ICMP payload + 28 of headers.
df_ping() {
	"$LAB" exec "$1" ping -c 2 -W 2 -M do -s 1252 "$2" >/dev/null
}

@test "full-size DF pings cross the relay path and the direct path" {
	node h-eim1
	node h-edm2
	node h-eim2
	# edm2 <-> eim1: over the relay (an EDM NAT against address-and-port
	# filtering)
	wait_for 20 pings h-edm2 100.64.0.1
	df_ping h-edm2 100.64.0.1
	run --separate-stderr "$LAB" exec h-edm2 "$MK_BIN/punch" status -i "$(ifc h-edm2)"
	assert_line --regexp '^alice +[^ ]+ relay https://'
	# eim1 <-> eim2: direct
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	df_ping h-eim1 100.64.0.2
}

@test "behind a UDP block: the tunnel runs over the relay on TCP 443" {
	node h-block
	node h-eim1
	wait_for 20 pings h-block 100.64.0.1
	"$LAB" exec h-block ping -c 3 -i 0.2 -W 2 100.64.0.1 >/dev/null
	run --separate-stderr "$LAB" exec h-block "$MK_BIN/punch" status -i "$(ifc h-block)"
	assert_line --regexp '^alice +[^ ]+ relay https://'
}

@test "the relay dying while a pair is direct does not interrupt it" {
	node h-eim1
	node h-eim2
	wait_for 20 pings h-eim1 100.64.0.2
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	p=$(cat "$BATS_FILE_TMPDIR/relay.pid")
	kill "$p"
	wait "$p" || true
	# 20 pings over 4 s without the relay: every one answered
	run "$LAB" exec h-eim1 ping -c 20 -i 0.2 -W 1 100.64.0.2
	assert_output --partial '20 received'
	# the relay again, for the tests after this one (same state: same key
	# and certificate)
	lab_relay_start
	wait_log punch-h-eim1 "relay .*trying again" 5
}

@test "a peer restarted on a new port is punched afresh" {
	node h-eim1
	node h-eim2
	wait_for 20 pings h-eim1 100.64.0.2
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	first=$(grep -o " direct $EIM2_WAN:[0-9]*" "$BATS_TEST_TMPDIR/punch-h-eim1.log" | head -n 1)
	p=$(bg_pid punch-h-eim2)
	kill "$p"
	wait "$p" || true
	bg_start punch-h-eim2b "$LAB" exec h-eim2 "$MK_BIN/punch" -v --node "$MESH" \
		-k "$KEYS/b.key" --wg "$(ifc h-eim2)" -p 40123
	# alice hears bob's new candidates and goes direct to the new port
	wait_for 20 '[ "$(grep -o " direct $EIM2_WAN:[0-9]*" "$BATS_TEST_TMPDIR/punch-h-eim1.log" | tail -n 1)" != "$first" ]'
	"$LAB" exec h-eim1 ping -c 3 -i 0.2 -W 1 100.64.0.2 >/dev/null
}

@test "a node keeps its public port across restarts; status names it and our NAT" {
	node h-eim1
	wait_log punch-h-eim1 'UDP port' 10
	port=$(sed -n 's/.*UDP port \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/punch-h-eim1.log")
	[ "$(cat "/var/lib/meshkit/punch-$(ifc h-eim1).port")" = "$port" ]
	wait_for 10 '"$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)" | grep -q "^# alice port $port nat [A-Za-z]* relay https://"'
	p=$(bg_pid punch-h-eim1)
	kill "$p"
	wait "$p" || true
	bg_start punch-h-eim1b "$LAB" exec h-eim1 "$MK_BIN/punch" -v --node "$MESH" \
		-k "$KEYS/a.key" --wg "$(ifc h-eim1)"
	wait_log punch-h-eim1b 'UDP port' 10
	grep -q "UDP port $port " "$BATS_TEST_TMPDIR/punch-h-eim1b.log"
}

@test "SIGHUP: a node added to mesh.conf becomes a peer, one removed is dropped" {
	m2=$BATS_TEST_TMPDIR/mesh2.conf
	grep -v '^node carol' "$MESH" >"$m2"
	# alice and dave start without carol
	"$LAB" exec h-eim1 env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"$(ifc h-eim1)" --mesh "$m2" --key "$KEYS/a.key"
	bg_start punch-h-eim1 "$LAB" exec h-eim1 "$MK_BIN/punch" -v --node "$m2" \
		-k "$KEYS/a.key" --wg "$(ifc h-eim1)"
	wait_log punch-h-eim1 'node alice: 2 peers' 10
	# carol joins: the file, WireGuard's peers, then punch
	cp "$MESH" "$m2"
	"$LAB" exec h-eim1 env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"$(ifc h-eim1)" --mesh "$m2" --key "$KEYS/a.key"
	kill -HUP "$(bg_pid punch-h-eim1)"
	wait_log punch-h-eim1 "$m2: 3 peers" 10
	node h-edm1
	wait_for 20 pings h-eim1 100.64.0.3
	# dave leaves: punch drops him
	grep -v '^node dave' "$MESH" >"$m2"
	kill -HUP "$(bg_pid punch-h-eim1)"
	wait_log punch-h-eim1 "$m2: 2 peers" 10
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)"
	refute_line --regexp '^dave '
	assert_line --regexp '^carol '
	# a file that does not parse changes nothing
	echo 'node broken' >>"$m2"
	kill -HUP "$(bg_pid punch-h-eim1)"
	wait_log punch-h-eim1 'keeping the peers as they are' 10
	"$LAB" exec h-eim1 ping -c 2 -i 0.2 -W 2 100.64.0.3 >/dev/null
}

@test "a mesh file without this node's key: exit 2, nothing left behind" {
	m2=$BATS_TEST_TMPDIR/mesh2.conf
	grep -v '^node alice' "$MESH" >"$m2"
	run -2 --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" --node "$m2" \
		-k "$KEYS/a.key" --wg "$(ifc h-eim1)"
	[[ $stderr == *"this node's key is not in it"* ]]
	[ ! -e "/run/meshkit/punch-$(ifc h-eim1).sock" ]
}

@test "two meshed relays: peers homed on different relays meet; killing one moves its nodes to the other" {
	t=$BATS_TEST_TMPDIR
	(umask 077; openssl rand -hex 32 >"$t/mesh.key")
	r1="http://$RELAY_IP:8080" r2="http://$PUB_IP:8080"
	m2=$t/mesh2.conf
	{
		echo "relay $r1"
		echo "relay $r2"
		echo "stun $RELAY_IP:3478"
		grep '^node ' "$MESH"
	} >"$m2"
	relay1() {
		bg_start "r1-$1" "$LAB" exec relay "$MK_BIN/derpcat" -l :8080 --http \
			--stun-port 0 -v --mesh-key "$t/mesh.key" --mesh-with "$r2"
		wait_log "r1-$1" 'listening on' 10
	}
	bg_start r2 "$LAB" exec pub "$MK_BIN/derpcat" -l :8080 --http --stun-port 0 -v \
		--mesh-key "$t/mesh.key" --mesh-with "$r1"
	wait_log r2 'listening on' 10
	# dave comes while the first relay is down: he homes on the second
	for h in h-edm1 h-edm2; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
			"$(ifc "$h")" --mesh "$m2" --key "$KEYS/$(key_of "$h").key"
	done
	bg_start punch-dave "$LAB" exec h-edm2 "$MK_BIN/punch" -v --node "$m2" \
		-k "$KEYS/d.key" --wg "$(ifc h-edm2)"
	wait_log punch-dave "on the relay $r2" 20
	relay1 a
	bg_start punch-carol "$LAB" exec h-edm1 "$MK_BIN/punch" -v --node "$m2" \
		-k "$KEYS/c.key" --wg "$(ifc h-edm1)"
	wait_log punch-carol "on the relay $r1" 20
	# EDM to EDM: no direct path; the packets cross both relays
	wait_for 30 pings h-edm1 100.64.0.4
	# the first relay dies: carol moves to the second, the tunnel goes on
	kill "$(bg_pid r1-a)"
	wait_log punch-carol "on the relay $r2" 30
	wait_for 30 pings h-edm1 100.64.0.4
}

# block ROUTER ADDR: drop UDP between this router and ADDR; unblock ROUTER
block() {
	"$LAB" exec "$1" nft -f - <<EOF
table inet mkcut {
	chain cut {
		type filter hook forward priority -10;
		ip daddr $2 meta l4proto udp drop
		ip saddr $2 meta l4proto udp drop
	}
}
EOF
}
unblock() { "$LAB" exec "$1" nft delete table inet mkcut; }

@test "an iperf3 TCP stream survives a relay -> direct and a direct -> relay switch" {
	block eim1 "$EIM2_WAN"
	node h-eim1
	node h-eim2
	wait_for 20 pings h-eim1 100.64.0.2
	bg_start iperf-s "$LAB" exec h-eim2 iperf3 -s -1 -B 100.64.0.2
	wait_for 10 '"$LAB" exec h-eim2 ss -Htln | grep -q 100.64.0.2:5201'
	bg_start iperf-c "$LAB" exec h-eim1 iperf3 -c 100.64.0.2 -t 12 -b 20M
	# relay -> direct
	sleep 3
	unblock eim1
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	# direct -> relay
	sleep 3
	block eim1 "$EIM2_WAN"
	wait_for 15 '[ "$(grep -c " relay http" "$BATS_TEST_TMPDIR/punch-h-eim1.log")" -ge 2 ]'
	rc=0
	wait "$(bg_pid iperf-c)" || rc=$?
	unblock eim1
	[ "$rc" = 0 ] || { bg_log iperf-c >&2; false; }
	bg_log iperf-c | grep -q 'receiver'
}

@test "a tunnel idle longer than the routers' UDP timeout stays direct (keepalive)" {
	# routers forget a UDP flow after 5 s; the mesh keeps it alive every 2 s
	m2=$BATS_TEST_TMPDIR/mesh2.conf
	{ cat "$MESH"; echo "option keepalive 2"; } >"$m2"
	for r in eim1 eim2; do
		"$LAB" exec "$r" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=5 \
			net.netfilter.nf_conntrack_udp_timeout_stream=5
	done
	for h in h-eim1 h-eim2; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
			"$(ifc "$h")" --mesh "$m2" --key "$KEYS/$(key_of "$h").key"
		bg_start "punch-$h" "$LAB" exec "$h" "$MK_BIN/punch" -v --node "$m2" \
			-k "$KEYS/$(key_of "$h").key" --wg "$(ifc "$h")"
	done
	wait_for 20 pings h-eim1 100.64.0.2
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	relays=$(grep -c " relay http" "$BATS_TEST_TMPDIR/punch-h-eim1.log")
	# idle for more than two timeouts
	sleep 12
	n0=$(relay_packets)
	"$LAB" exec h-eim1 ping -c 5 -i 0.2 -W 1 100.64.0.2 >/dev/null
	n1=$(relay_packets)
	for r in eim1 eim2; do
		"$LAB" exec "$r" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=30 \
			net.netfilter.nf_conntrack_udp_timeout_stream=120
	done
	[ $((n1 - n0)) -le 2 ] || { echo "the relay carried $((n1 - n0)) packets" >&2; false; }
	# no fall back to the relay meanwhile
	assert_equal "$(grep -c " relay http" "$BATS_TEST_TMPDIR/punch-h-eim1.log")" "$relays"
}

@test "an idle node, its peers away, uses no CPU" {
	node h-eim1
	wait_log punch-h-eim1 'on the relay' 20
	pid=$(bg_pid punch-h-eim1)
	t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	sleep 3
	t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	# clock ticks (1/100 s): the peers' call-me-maybe and pings cost
	# well under 1 % of a core
	[ $((t1 - t0)) -le 3 ] || { echo "used $((t1 - t0)) ticks in 3 s" >&2; false; }
}

@test "nodes started 30 s apart still go direct" {
	node h-eim1
	wait_log punch-h-eim1 'on the relay' 20
	# bob is away for 30 s: alice's call-me-maybe finds nobody, and she
	# slows down to one every 30 s
	sleep 30
	node h-eim2
	wait_log punch-h-eim1 " direct $EIM2_WAN:" 20
	wait_log punch-h-eim2 " direct $EIM1_WAN:" 20
	"$LAB" exec h-eim1 ping -c 2 -i 0.2 -W 1 100.64.0.2 >/dev/null
}
