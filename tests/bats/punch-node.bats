#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch --node carrying WireGuard (wireguard-go) between lab hosts:
#
#   h-eim1 (alice) --[eim1]--+
#                            +-- inet --- relay (derpcat -l, TLS, STUN)
#   h-eim2 (bob)   --[eim2]--+
#   h-edm1 (carol) --[edm1]--+     h-edm2 (dave) --[edm2]--+
#   h-eim1b (erin), on h-eim1's LAN behind eim1
#   h-ds1 (frank) --[ds1]--+  dual stack: IPv4 as eim1, IPv6 routed
#   h-ds2 (grace) --[ds2]--+  through a stateful firewall (no NAT66)
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
	wg_keys a b c d e f g
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
	# every node; the file-wide mesh keeps the first four (tests count
	# their peers), mesh_of picks from these
	{
		grep '^node ' "$MESH"
		echo "node erin $(cat "$KEYS/e.pub") 100.64.0.5"
		echo "node frank $(cat "$KEYS/f.pub") 100.64.0.6"
		echo "node grace $(cat "$KEYS/g.pub") 100.64.0.7"
	} >"$d/nodes"
}

HOSTS="h-eim1 h-eim2 h-edm1 h-edm2 h-block h-eim1b h-ds1 h-ds2"

teardown_file() {
	local h
	for h in $HOSTS; do
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
	local h r
	for h in $HOSTS; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
	# what the tests below add to routers and hosts
	"$LAB" delay ds1 off
	for r in ds1 h-eim1b; do
		"$LAB" exec "$r" nft delete table inet mkcount 2>/dev/null || true
	done
	"$LAB" exec eim1 nft delete table ip mkmove 2>/dev/null || true
}

ifc() {
	case $1 in
	h-eim1) echo "${IFP}a" ;;
	h-eim2) echo "${IFP}b" ;;
	h-edm1) echo "${IFP}c" ;;
	h-edm2) echo "${IFP}d" ;;
	h-block) echo "${IFP}x" ;;
	h-eim1b) echo "${IFP}e" ;;
	h-ds1) echo "${IFP}f" ;;
	h-ds2) echo "${IFP}g" ;;
	esac
}

key_of() {
	case $1 in
	h-eim1) echo a ;;
	h-eim2) echo b ;;
	h-edm1) echo c ;;
	h-edm2) echo d ;;
	h-block) echo c ;;
	h-eim1b) echo e ;;
	h-ds1) echo f ;;
	h-ds2) echo g ;;
	esac
}

# node HOST [MESH [OPTION...]]: WireGuard up from the mesh file (the
# file-wide one by default), then punch --node on it with the options
node() {
	local h=$1 m=${2:-$MESH} k
	shift $(($# < 2 ? $# : 2))
	k=$(key_of "$h")
	"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"$(ifc "$h")" --mesh "$m" --key "$KEYS/$k.key"
	bg_start "punch-$h" "$LAB" exec "$h" "$MK_BIN/punch" -v --node "$m" \
		-k "$KEYS/$k.key" --wg "$(ifc "$h")" "$@"
}

# mesh_of NAME...: a mesh file with the relay and only these nodes
mesh_of() {
	local m n
	m=$BATS_TEST_TMPDIR/mesh-$(IFS=-; echo "$*").conf
	{
		grep -v '^node ' "$MESH"
		for n in "$@"; do grep "^node $n " "$BATS_FILE_TMPDIR/nodes"; done
	} >"$m"
	echo "$m"
}

# key_re K: the public key of K as an ERE that matches only it
key_re() { sed 's/[+/]/./g' "$KEYS/$1.pub"; }

# last_direct HOST K: the address of the last direct path event punch on
# HOST printed for K's node
last_direct() {
	grep -E "^$(key_re "$2") direct " "$BATS_TEST_TMPDIR/punch-$1.log" |
		tail -n 1 | cut -d' ' -f3
}

# counter HOST NAME: packets through the named counter of table inet
# mkcount in HOST
counter() {
	"$LAB" exec "$1" nft list counter inet mkcount "$2" |
		sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# relay_quiet HOST ADDR [PING OPTIONS]: 20 pings through the tunnel, none of their 40
# WireGuard packets through the relay (disco may use it: allow a few)
relay_quiet() {
	local n0 n1 h=$1 a=$2
	shift 2
	n0=$(relay_packets)
	"$LAB" exec "$h" ping -c 20 -i 0.05 -W 1 "$@" "$a" >/dev/null
	n1=$(relay_packets)
	[ $((n1 - n0)) -le 4 ] || { echo "the relay carried $((n1 - n0)) packets" >&2; false; }
}

pings() {
	"$LAB" exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1
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

@test "behind stateful IPv6 firewalls (no NAT66): direct between the hosts' global IPv6 addresses" {
	# -6: IPv6 alone between them (with both families the faster one wins;
	# see the path choice tests)
	m=$(mesh_of frank grace)
	node h-ds1 "$m" -6
	node h-ds2 "$m" -6
	wait_for 20 pings h-ds1 100.64.0.7
	wait_log punch-h-ds1 "^$(key_re g) direct \[$H_DS2_IP6\]:[0-9]+ " 20
	wait_log punch-h-ds2 "^$(key_re f) direct \[$H_DS1_IP6\]:[0-9]+ " 20
	# each firewall passed the flow both ways: opened from both sides
	replied ds1 "$H_DS1_IP6" "$H_DS2_IP6"
	replied ds2 "$H_DS2_IP6" "$H_DS1_IP6"
	relay_quiet h-ds1 100.64.0.7
	run --separate-stderr "$LAB" exec h-ds1 "$MK_BIN/punch" status -i "$(ifc h-ds1)"
	assert_line --regexp '^grace +[^ ]+ direct \['"$H_DS2_IP6"'\]:[0-9]+ '
	# full-size DF pings (see df_ping) cross the IPv6 path, not the relay
	relay_quiet h-ds1 100.64.0.7 -M do -s 1252
}

@test "two hosts behind one router: direct over their LAN addresses, not through the router" {
	m=$(mesh_of alice erin)
	# erin's side of the LAN counts what comes from and goes to alice
	"$LAB" exec h-eim1b nft -f - <<NFT
table inet mkcount {
	counter from_alice { }
	counter to_alice { }
	chain in { type filter hook input priority 0; ip saddr $H_EIM1_IP meta l4proto udp counter name from_alice; }
	chain out { type filter hook output priority 0; ip daddr $H_EIM1_IP meta l4proto udp counter name to_alice; }
}
NFT
	node h-eim1 "$m"
	node h-eim1b "$m"
	wait_for 20 pings h-eim1 100.64.0.5
	wait_log punch-h-eim1 "^$(key_re e) direct $H_EIM1B_IP:[0-9]+ " 20
	wait_log punch-h-eim1b "^$(key_re a) direct $H_EIM1_IP:[0-9]+ " 20
	in0=$(counter h-eim1b from_alice) out0=$(counter h-eim1b to_alice)
	relay_quiet h-eim1 100.64.0.5
	in1=$(counter h-eim1b from_alice) out1=$(counter h-eim1b to_alice)
	# 20 pings in, 20 replies out, on the LAN
	[ $((in1 - in0)) -ge 20 ] && [ $((out1 - out0)) -ge 20 ] ||
		{ echo "LAN counters: in $in0 -> $in1, out $out0 -> $out1" >&2; false; }
	# eim1 forwarded nothing between them (the switch did), and their
	# pings to each other's public mapping got no answer (it does not
	# hairpin)
	ct=$("$LAB" exec eim1 conntrack -L 2>/dev/null)
	echo "$ct"
	run ! grep -F -e "src=$H_EIM1_IP dst=$H_EIM1B_IP " -e "src=$H_EIM1B_IP dst=$H_EIM1_IP " <<<"$ct"
	grep -F "src=$H_EIM1_IP dst=$EIM1_WAN " <<<"$ct" | grep -q UNREPLIED
	[ -z "$(grep -F "src=$H_EIM1_IP dst=$EIM1_WAN " <<<"$ct" | grep -v UNREPLIED)" ]
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)"
	assert_line --regexp '^erin +[^ ]+ direct '"$H_EIM1B_IP"':[0-9]+ '
}

# The EIM router filters by address and port; the EDM router gives each
# destination a new random port. carol's pings to alice leave edm1 from a
# port alice never sent to, so eim1 drops them; alice's pings go to the
# port carol's STUN server saw, which edm1 holds for that server alone, so
# edm1 drops them. Plain punching cannot open this pair (a port mapping or
# a full-cone router could: see punch-lab.bats).
@test "EIM with address-and-port filtering <-> EDM: no direct path, so the relay carries the tunnel" {
	node h-eim1
	node h-edm1
	wait_for 20 pings h-edm1 100.64.0.1
	# 20 pings over 10 s, with punch trying all the while: all answered,
	# every one by the relay
	n0=$(relay_packets)
	run "$LAB" exec h-edm1 ping -c 20 -i 0.5 -W 2 100.64.0.1
	n1=$(relay_packets)
	assert_output --partial ' 20 received'
	[ $((n1 - n0)) -ge 40 ] || { echo "the relay carried only $((n1 - n0)) packets" >&2; false; }
	run --separate-stderr "$LAB" exec h-edm1 "$MK_BIN/punch" status -i "$(ifc h-edm1)"
	assert_line --regexp '^alice +[^ ]+ relay https://'
	run --separate-stderr "$LAB" exec h-eim1 "$MK_BIN/punch" status -i "$(ifc h-eim1)"
	assert_line --regexp '^carol +[^ ]+ relay https://'
	# no path event on either side (the logs also say "no direct path")
	run ! grep -q "^$(key_re a) direct " "$BATS_TEST_TMPDIR/punch-h-edm1.log"
	run ! grep -q "^$(key_re c) direct " "$BATS_TEST_TMPDIR/punch-h-eim1.log"
	# punch did try: its pings left both routers, and none came back
	wait_log punch-h-eim1 'carol: candidate '"$EDM1_WAN"':' 1
	run ! replied eim1 "$EIM1_WAN" "$EDM1_WAN"
	run ! replied edm1 "$EDM1_WAN" "$EIM1_WAN"
}

@test "the NAT moves a direct pair's mapping to a new port: punched again, direct on the new port" {
	node h-eim1
	node h-eim2
	wait_for 20 pings h-eim1 100.64.0.2
	wait_log punch-h-eim2 "^$(key_re a) direct $EIM1_WAN:[0-9]+ " 20
	old=$(last_direct h-eim2 a)
	port=${old##*:}
	# traffic all along, so both sides watch the path
	bg_start ping "$LAB" exec h-eim1 ping -i 0.5 -W 1 100.64.0.2
	# eim1 forgets its UDP flows, and maps UDP anywhere but to the old
	# port (masquerade would otherwise keep the source port)
	if [ "$port" -lt 60000 ]; then range=$((port + 1))-65535; else range=1024-$((port - 1)); fi
	"$LAB" exec eim1 nft -f - <<NFT
table ip mkmove {
	chain post {
		type nat hook postrouting priority srcnat - 1;
		oifname "wan0" meta l4proto udp masquerade to :$range
	}
}
NFT
	"$LAB" exec eim1 conntrack -D -p udp >/dev/null 2>&1 || true
	# bob finds alice at her new mapping: both lose the path within 5 s;
	# losing it, alice asks STUN at once (not at her next round, 20-26 s
	# after the last), learns her new mapping and tells bob, whose pings
	# then meet hers
	wait_log punch-h-eim1 "stopped answering" 10
	wait_log punch-h-eim1 "a path was lost: learning our mapping again" 5
	wait_for 60 '[ -n "$(last_direct h-eim2 a)" ] && [ "$(last_direct h-eim2 a)" != "$old" ]'
	new=$(last_direct h-eim2 a)
	[[ $new == "$EIM1_WAN":* ]]
	replied eim1 "$EIM1_WAN" "$EIM2_WAN"
	"$LAB" exec eim1 conntrack -L -p udp --reply-port-dst "${new##*:}" 2>/dev/null |
		grep -q "dst=$EIM2_WAN "
	wait_log punch-h-eim1 "^$(key_re b) direct $EIM2_WAN:[0-9]+ " 5
	relay_quiet h-eim1 100.64.0.2
	"$LAB" exec h-eim1 ping -c 3 -i 0.2 -W 1 100.64.0.2 >/dev/null
}

# path_choice FAMILY: delay ds1's FAMILY (4 or 6) by 40 ms each way (80 ms
# a round trip: far past lib/path's 10-point IPv6 bonus, which a path some
# 12 % faster already outweighs); frank and grace must choose the other
# family, and the routers' counters must show the tunnel there.
path_choice() {
	local slow=$1 m want_g want_f slow_g c4 c6 d4 d6
	"$LAB" exec ds1 nft -f - <<NFT
table inet mkcount {
	counter v4 { }
	counter v6 { }
	chain count {
		type filter hook forward priority -5;
		ip saddr $DS2_WAN meta l4proto udp counter name v4
		ip daddr $DS2_WAN meta l4proto udp counter name v4
		ip6 saddr $H_DS2_IP6 meta l4proto udp counter name v6
		ip6 daddr $H_DS2_IP6 meta l4proto udp counter name v6
	}
}
NFT
	"$LAB" delay ds1 "$slow" 40
	m=$(mesh_of frank grace)
	node h-ds1 "$m"
	node h-ds2 "$m"
	wait_for 20 pings h-ds1 100.64.0.7
	if [ "$slow" = 6 ]; then
		want_g="$DS2_WAN:[0-9]+" want_f="$DS1_WAN:[0-9]+"
		slow_g="\[$H_DS2_IP6\]:[0-9]+"
	else
		want_g="\[$H_DS2_IP6\]:[0-9]+" want_f="\[$H_DS1_IP6\]:[0-9]+"
		slow_g="$DS2_WAN:[0-9]+"
	fi
	wait_log punch-h-ds1 "^$(key_re g) direct $want_g " 30
	wait_log punch-h-ds2 "^$(key_re f) direct $want_f " 30
	# the slow path was open too: its pongs came, and lost
	wait_log punch-h-ds1 "grace: pong from $slow_g in " 30
	# the choice holds, on both sides
	[[ $(last_direct h-ds1 g) =~ ^$want_g$ ]]
	[[ $(last_direct h-ds2 f) =~ ^$want_f$ ]]
	run --separate-stderr "$LAB" exec h-ds1 "$MK_BIN/punch" status -j -i "$(ifc h-ds1)"
	"$PY" -c 'import json, re, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
g = [r for r in rows if r["name"] == "grace"][0]
assert g["path"] == "direct" and re.fullmatch(sys.argv[2], g["endpoint"]), g' "$output" "$want_g"
	# the routers agree: the tunnel's packets cross ds1 in that family
	c4=$(counter ds1 v4) c6=$(counter ds1 v6)
	relay_quiet h-ds1 100.64.0.7
	d4=$(($(counter ds1 v4) - c4)) d6=$(($(counter ds1 v6) - c6))
	echo "ds1 forwarded $d4 IPv4, $d6 IPv6 packets of the pair" >&2
	if [ "$slow" = 6 ]; then
		[ "$d4" -ge 40 ] && [ "$d6" -le 4 ]
	else
		[ "$d6" -ge 40 ] && [ "$d4" -le 4 ]
	fi
}

@test "path choice: IPv6 delayed by more than its bonus, the IPv4 path wins on both sides" {
	path_choice 6
}

@test "path choice: IPv4 delayed, the IPv6 path wins on both sides" {
	path_choice 4
}
