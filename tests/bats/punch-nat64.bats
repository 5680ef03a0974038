#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch on an IPv6-only host behind NAT64:
#
#   h-v6nsp (bob) --[nsp64: NAT64 by fd64:6e:0:64::/96, DNS64]--+
#                                                                +-- inet --- relay 198.18.0.20
#   h-eim1 (alice) --[eim1]-------------------------------------+
#
# nsp64 serves only its network-specific prefix, and only its DNS64 names
# it (RFC 7050: the AAAA answers for ipv4only.arpa); the well-known prefix
# 64:ff9b::/96 is refused there. So only a punch that learned the prefix
# reaches the IPv4 relay, the IPv4 STUN server and alice's IPv4 candidates
# at all. "Direct" is judged by the routers' conntrack and the relay's
# counters, never by punch's word. Interface names are this file's own
# (n6...): wireguard-go's sockets in /run/wireguard are shared.

load helpers
load wgsetup-helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mk6n$$ IFP=n6$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	wg_path_setup
	wg_keys a b
	lab_relay_start
	export MESH=$BATS_FILE_TMPDIR/mesh.conf
	{
		echo "domain mesh.test"
		echo "relay https://$RELAY_IP $PIN"
		echo "node alice $(cat "$KEYS/a.pub") 100.64.0.1"
		echo "node bob $(cat "$KEYS/b.pub") 100.64.0.2"
	} >"$MESH"
}

teardown_file() {
	local h
	for h in h-eim1 h-v6nsp; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
	wg_cleanup "$IFP"
	rm -f /var/lib/meshkit/punch-"$IFP"?.port
	rmdir /var/lib/meshkit /run/meshkit 2>/dev/null || true
	lab_relay_stop
	"$LAB" down
}

teardown() {
	bg_stop_all
	local h
	for h in h-eim1 h-v6nsp; do
		"$LAB" exec "$h" env PATH="$WGPATH" "$MK_BIN/wgsetup" down "$(ifc "$h")" \
			2>/dev/null || true
	done
}

ifc() {
	case $1 in
	h-eim1) echo "${IFP}a" ;;
	h-v6nsp) echo "${IFP}b" ;;
	esac
}

key_of() {
	case $1 in
	h-eim1) echo a ;;
	h-v6nsp) echo b ;;
	esac
}

# The log line of a punch that learned nsp64's prefix by RFC 7050.
learned_nsp() {
	wait_log "$1" "NAT64 prefix ${NSP64_PREFIX//./\\.} \\(RFC 7050" 10
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

@test "one-shot: the IPv6-only host learns the NSP by RFC 7050 and goes direct to an IPv4 peer" {
	bg_start b "$LAB" exec h-v6nsp timeout 30 "$MK_BIN/punch" -v -k "$KEYS/b.key" \
		-c "$MESH" alice
	bg_start a "$LAB" exec h-eim1 timeout 30 "$MK_BIN/punch" -v -k "$KEYS/a.key" \
		-c "$MESH" bob
	wait "$(bg_pid a)"
	wait "$(bg_pid b)"
	learned_nsp b
	# the relay and the STUN server (both 198.18.0.20) through the prefix
	grep -q "candidate $NSP64_WAN:[0-9]* (STUN)" "$BATS_TEST_TMPDIR/b.log"
	grep -q "on the relay https://$RELAY_IP" "$BATS_TEST_TMPDIR/b.log"
	# LOCALPORT REMOTE_IP:PORT RTT_MS: each sees the other's router
	grep -Eq "^[0-9]+ $EIM1_WAN:[0-9]+ [0-9.]+$" "$BATS_TEST_TMPDIR/b.log"
	grep -Eq "^[0-9]+ $NSP64_WAN:[0-9]+ [0-9.]+$" "$BATS_TEST_TMPDIR/a.log"
	replied nsp64 "$EIM1_WAN" "$NSP64_WAN"
	replied eim1 "$EIM1_WAN" "$NSP64_WAN"
	# alice has IPv4: no NAT64 for her
	run ! grep -q 'NAT64' "$BATS_TEST_TMPDIR/a.log"
}

# A full-size packet of the tunnel (wgsetup's MTU 1280) with DF set: 1252
# bytes of ICMP payload + 28 of headers. Over NAT64 the outer packet is
# 1280 + 32 (WireGuard) + 8 (UDP) + 40 (IPv6) = 1360 bytes on the
# IPv6-only LAN, 20 fewer as IPv4 past the NAT64: well inside 1500.
df_ping() {
	"$LAB" exec "$1" ping -c 2 -W 2 -M do -s 1252 "$2" >/dev/null
}

@test "node: the tunnel between an IPv6-only host and an IPv4 one goes direct through NAT64; full-size DF pings cross" {
	node h-eim1
	node h-v6nsp
	learned_nsp punch-h-v6nsp
	wait_for 20 pings h-v6nsp 100.64.0.1
	wait_log punch-h-v6nsp "^$(sed 's/[+/]/./g' "$KEYS/a.pub") direct $EIM1_WAN:[0-9]+ " 20
	wait_log punch-h-eim1 "^$(sed 's/[+/]/./g' "$KEYS/b.pub") direct $NSP64_WAN:[0-9]+ " 20
	replied nsp64 "$EIM1_WAN" "$NSP64_WAN"
	replied eim1 "$EIM1_WAN" "$NSP64_WAN"
	# direct now: 20 pings (40 WireGuard packets) cross, none of them
	# through the relay (disco may: allow a few)
	n0=$(relay_packets)
	"$LAB" exec h-v6nsp ping -c 20 -i 0.05 -W 1 100.64.0.1 >/dev/null
	n1=$(relay_packets)
	[ $((n1 - n0)) -le 4 ] || { echo "the relay carried $((n1 - n0)) packets" >&2; false; }
	# full-size DF pings both ways, on the direct path too: at wgsetup's
	# MTU, then at the largest punch(1) allows over NAT64 on a 1500-byte
	# link, 1420 (1500 - 40 IPv6 - 8 UDP - 32 WireGuard)
	df_ping h-v6nsp 100.64.0.1
	df_ping h-eim1 100.64.0.2
	"$LAB" exec h-v6nsp ip link set dev "$(ifc h-v6nsp)" mtu 1420
	"$LAB" exec h-eim1 ip link set dev "$(ifc h-eim1)" mtu 1420
	"$LAB" exec h-v6nsp ping -c 2 -W 2 -M do -s 1392 100.64.0.1 >/dev/null
	"$LAB" exec h-eim1 ping -c 2 -W 2 -M do -s 1392 100.64.0.2 >/dev/null
	n2=$(relay_packets)
	[ $((n2 - n1)) -le 4 ] || { echo "the relay carried $((n2 - n1)) packets" >&2; false; }
	run --separate-stderr "$LAB" exec h-v6nsp "$MK_BIN/punch" status -i "$(ifc h-v6nsp)"
	assert_line --regexp '^alice +[^ ]+ direct '"$EIM1_WAN"':[0-9]+ '
}

# v6only_offline CMD...: run CMD in a new network and mount namespace with
# loopback only (so no IPv4 route) whose resolver, [::1]:53, answers every
# query with no record (NOERROR, NODATA): a resolver without DNS64. The
# questions it got go to $BATS_TEST_TMPDIR/dns.log.
v6only_offline() {
	local d=$BATS_TEST_TMPDIR
	printf 'nameserver ::1\noptions timeout:1 attempts:1\n' >"$d/resolv.conf"
	cat >"$d/nodata.py" <<-'EOF'
	import socket, sys
	s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
	s.bind(("::1", 53))
	print("ready", flush=True)
	while True:
	    q, peer = s.recvfrom(4096)
	    i = 12
	    labels = []
	    while q[i]:
	        labels.append(q[i + 1:i + 1 + q[i]].decode())
	        i += 1 + q[i]
	    qtype = int.from_bytes(q[i + 1:i + 3], "big")
	    print(".".join(labels), qtype, flush=True)
	    # the question back, QR RD RA, no answer
	    s.sendto(q[:2] + b"\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:i + 5], peer)
	EOF
	cat >"$d/v6only.sh" <<-'EOF'
	d=$1; shift
	mount --bind "$d/resolv.conf" /etc/resolv.conf || exit 99
	ip link set lo up || exit 99
	python3 "$d/nodata.py" >"$d/dns.log" &
	dns=$!
	trap 'kill $dns' EXIT
	i=0
	until grep -q ready "$d/dns.log" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 200 ] || exit 99; sleep 0.05
	done
	"$@"
	EOF
	unshare --net --mount sh "$d/v6only.sh" "$d" "$@"
}

@test "no DNS64: an IPv6-only host falls back to the well-known prefix 64:ff9b::/96" {
	# a relay on loopback where nothing listens: punch dials it once it
	# has a prefix, and fails then (nothing leaves the namespace)
	run v6only_offline "$MK_BIN/punch" -v --no-portmap -k "$KEYS/b.key" -w 5 \
		--relay 'https://[::1]:1' "$(cat "$KEYS/a.pub")"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *"relay https://[::1]:1"*"refused"* ]]
	[[ $output == *"no IPv4 route: looking for a NAT64 prefix"* ]]
	[[ $output == *"NAT64 prefix 64:ff9b::/96 (the well-known prefix: the resolver does no DNS64)"* ]]
	# it did ask: ipv4only.arpa, AAAA (28)
	grep -qx 'ipv4only.arpa 28' "$BATS_TEST_TMPDIR/dns.log"
}

@test "a host with an IPv4 route looks for no NAT64 prefix" {
	# a default route into a veth pair with nobody at its end
	run unshare --net sh -c 'ip link set lo up && ip link add d0 type veth peer name d1 &&
		ip link set d0 up && ip addr add 192.0.2.2/24 dev d0 &&
		ip route add default via 192.0.2.1 &&
		exec "$0" -v --no-portmap -k "$1" -w 5 --relay "https://[::1]:1" "$2"' \
		"$MK_BIN/punch" "$KEYS/b.key" "$(cat "$KEYS/a.pub")"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *"relay https://[::1]:1"*"refused"* ]]
	[[ $output != *"NAT64"* ]]
}
