#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
#
# The lab checks itself before any program is judged by it: every router's mapping and filtering, probed
# with raw UDP and TCP (tests/lab/probe.py), not with a classifier. Linux conntrack filtering is
# address-and-port-dependent; fullcone and rcone widen it with nft sets (see tests/lab/lab.sh), and only
# hair hairpins. nat64's IPv6-only host reaches the IPv4 stun host through NAT64 (tayga, 64:ff9b::/96)
# and the same EIM masquerade as eim1; nsp64's through its network-specific prefix only, which its DNS64
# gives out. ds1 and ds2 are dual stack: eim1's IPv4, and IPv6 routed without NAT66 through a stateful
# firewall. h-eim1b shares eim1's LAN (a switch) with h-eim1. `lab.sh delay` holds a router's forwarded
# packets of one family. Every probe gives up after 1 s, and the "all" probes 0.3 s after
# the first answer; nothing sleeps.

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	# The tests share one lab and its stun server; under `bats --jobs` run them one after another.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	export LAB="$BATS_TEST_DIRNAME/../lab/lab.sh"
	export PROBE="$BATS_TEST_DIRNAME/../lab/probe.py"
	export LAB_PREFIX="mkt$$"
	ip -o link show | awk -F': ' '{print $2}' | sort >"$BATS_FILE_TMPDIR/host-links"
	"$LAB" up >"$BATS_FILE_TMPDIR/env"
	. "$BATS_FILE_TMPDIR/env"
	# One echo server on the stun host for all tests: two addresses, other ports, IPv6.
	start_echo stun --lifetime 0 --bind "$STUN_IP1:3478" --bind "$STUN_IP1:3479" \
	    --bind "$STUN_IP2:3478" --bind "$STUN_IP2:4000" --bind "[$STUN_IP6_1]:3478" \
	    --bind "[$STUN_IP6_1]:3479" --bind "[$STUN_IP6_2]:3478"
}

teardown_file() {
	"$LAB" down
}

teardown() {
	if [ -e "$BATS_TEST_TMPDIR/routes" ]; then
		ip -n "$LAB_PREFIX-pub" route flush root 10.0.0.0/8
		ip -n "$LAB_PREFIX-pub" route flush root 100.64.0.0/10
		ip -n "$LAB_PREFIX-pub" route flush root 192.168.0.0/16
	fi
	if [ -e "$BATS_TEST_TMPDIR/upnp" ]; then "$LAB" miniupnpd stop; fi
	if [ -e "$BATS_TEST_TMPDIR/delay" ]; then "$LAB" delay ds1 off; fi
	if [ -e "$BATS_TEST_TMPDIR/lab2" ]; then LAB_PREFIX=$(cat "$BATS_TEST_TMPDIR/lab2") "$LAB" down; fi
	stop_echos
}

# start_echo HOST ARGS...: a probe.py echo server in HOST, ready when this returns, stopped by teardown.
start_echo() {
	local host=$1 pidf
	shift
	pidf=$(mktemp "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/echo.XXXXXX")
	"$LAB" exec "$host" "$PROBE" echo --pidfile "$pidf" --lifetime 60 "$@" </dev/null >/dev/null 3>&-
	[ -s "$pidf" ]
}

stop_echos() {
	local f pids=()
	for f in "$BATS_TEST_TMPDIR"/echo.*; do
		[ -s "$f" ] && pids+=("$(cat "$f")")
	done
	[ "${#pids[@]}" -gt 0 ] || return 0
	kill "${pids[@]}" 2>/dev/null || true
	poll 100 gone "${pids[@]}"
}

# Run "$@" until it succeeds, for up to $1 hundredths of a second.
poll() {
	local n=$1
	shift
	until "$@"; do
		[ "$n" -gt 0 ] || return 1
		n=$((n - 1))
		sleep 0.01
	done
}

# None of the pids runs (a zombie waiting for init to reap it does not count).
gone() {
	local p st
	for p in "$@"; do
		st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		st=${st##*) }
		[ "${st%% *}" = Z ] || return 1
	done
}

# The namespaces of lab $1 (ip netns list complains on stderr about one that another lab is deleting).
lab_ns() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-"
}

in_ns() {
	ip netns pids "$1" | grep -qx "$2"
}

probe() {
	local host=$1
	shift
	"$LAB" exec "$host" "$PROBE" "$@"
}

# From one socket to three endpoints (another address, another port): one mapping, on WAN, and the
# source port kept (the fullcone and rcone emulation relies on it).
assert_eim() {
	local host=$1 wan=$2 port=$3
	run probe "$host" map --from-port "$port" "$STUN_IP1:3478" "$STUN_IP2:3478" "$STUN_IP1:3479"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$STUN_IP1:3478 $wan:$port
$STUN_IP2:3478 $wan:$port
$STUN_IP1:3479 $wan:$port" ]
}

# A new random port per destination. Three destinations: all three equal would mean EIM; requiring all
# three to differ would fail once in about 20,000 runs on a chance collision.
assert_edm() {
	local host=$1 wan=$2
	run probe "$host" map "$STUN_IP1:3478" "$STUN_IP2:3478" "$STUN_IP1:3479"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(awk '{print $2}' <<<"$output" | sed 's/:[0-9]*$//' | sort -u)" = "$wan" ]
	[ "$(awk '{print $2}' <<<"$output" | sort -u | wc -l)" -ge 2 ]
}

# Address $1 in the NAT64 prefix (RFC 6052, a /96): 198.18.0.10 -> 64:ff9b::c612:a, as probe.py prints it.
nat64() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	printf '%s%x:%x\n' "${NAT64_PREFIX%/96}" $(($1 << 8 | $2)) $(($3 << 8 | $4))
}

# tayga runs, by its pid file, in lab $1's nat64 namespace.
tayga_in_ns() {
	[ -s "/run/meshkit-lab/$1/tayga.pid" ] && in_ns "$1-nat64" "$(cat "/run/meshkit-lab/$1/tayga.pid")"
}

# The sources the NAT admits (sorted) after the host sent to STUN_IP1:3478 alone; the stun host answers
# from all its sockets.
admitted() {
	probe "$1" filter "$STUN_IP1:3478" | sort
}

@test "up: every address exported, env repeats it, names prefixed, no link in the host namespace" {
	run "$LAB" env
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat "$BATS_FILE_TMPDIR/env")" ]
	for v in LAB_PREFIX STUN_IP1 STUN_IP2 STUN_IP6_1 STUN_IP6_2 STUN2_IP RELAY_IP PUB_IP PUB_IP6 \
	    EIM1_WAN EIM2_WAN EDM1_WAN EDM2_WAN CGNAT_WAN HOME_WAN BLOCK_WAN FULL_WAN RCONE_WAN UPNP_WAN \
	    HAIR_WAN H_EIM1_IP H_EIM2_IP H_EDM1_IP H_EDM2_IP H_DBL_IP H_BLOCK_IP H_FULL_IP H_RCONE_IP \
	    H_UPNP_IP H_HAIR_IP UPNP_LAN_GW UPNP_LEASE_FILE NAT64_WAN NAT64_LAN H_V6ONLY_IP6 NAT64_PREFIX \
	    NAT64_POOL DS1_WAN DS2_WAN DS1_WAN6 DS2_WAN6 DS1_LAN6 DS2_LAN6 H_DS1_IP H_DS2_IP H_DS1_IP6 \
	    H_DS2_IP6 H_EIM1B_IP; do
		[ -n "${!v:-}" ] || { echo "$v is not exported"; return 1; }
	done
	[[ $HOME_WAN == 100.64.* ]]
	[ "$("$LAB" ns h-eim1)" = "$LAB_PREFIX-h-eim1" ]
	[ "$(lab_ns "$LAB_PREFIX" | wc -l)" -eq 36 ]
	diff "$BATS_FILE_TMPDIR/host-links" <(ip -o link show | awk -F': ' '{print $2}' | sort)
	# IPv6 only where it is wanted.
	[ "$("$LAB" exec h-eim1 cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" = 1 ]
	[ "$("$LAB" exec eim1 cat /proc/sys/net/ipv6/conf/wan0/disable_ipv6)" = 1 ]
	[ "$("$LAB" exec nat64 cat /proc/sys/net/ipv6/conf/wan0/disable_ipv6)" = 1 ]
	[ "$("$LAB" exec nat64 cat /proc/sys/net/ipv6/conf/lan0/disable_ipv6)" = 0 ]
	"$LAB" exec pub ip -6 addr show dev eth0 | grep -q "inet6 $PUB_IP6/"
	[ "$("$LAB" exec ds1 cat /proc/sys/net/ipv6/conf/wan0/disable_ipv6)" = 0 ]
	[ "$("$LAB" exec ds1 cat /proc/sys/net/ipv6/conf/all/forwarding)" = 1 ]
	[ "$("$LAB" exec h-eim1b cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" = 1 ]
	"$LAB" exec h-ds2 ip -6 addr show dev eth0 | grep -q "inet6 $H_DS2_IP6/64 "
	[ "$H_EIM1B_IP" = "${EIM1_LAN%.1}.3" ]
	[ "$NAT64_PREFIX" = 64:ff9b::/96 ]
	tayga_in_ns "$LAB_PREFIX"
	# A second up of the same lab refuses and leaves it alone.
	run "$LAB" up
	[ "$status" -eq 1 ]
	[[ $output == *"already up"* ]]
	[ "$(lab_ns "$LAB_PREFIX" | wc -l)" -eq 36 ]
	run "$LAB" status
	[ "$status" -eq 0 ]
	[[ $(tr -s ' ' <<<"$output") == *"fullcone full $FULL_WAN/15 $FULL_LAN/24 h-full $H_FULL_IP/24 "* ]]
	[[ $(tr -s ' ' <<<"$output") == *"hair hair $HAIR_WAN/15 $HAIR_LAN/24 h-hair $H_HAIR_IP/24 "* ]]
	[[ $(tr -s ' ' <<<"$output") == *"nat64 nat64 $NAT64_WAN/15 $NAT64_LAN/64 h-v6only $H_V6ONLY_IP6/64 "* ]]
	[[ $output == *"tayga: running (pid $(cat "/run/meshkit-lab/$LAB_PREFIX/tayga.pid"))"* ]]
	[[ $(tr -s ' ' <<<"$output") == *"ds1 ds $DS1_WAN/15 $DS1_LAN/24 h-ds1 $H_DS1_IP/24 "* ]]
	[[ $(tr -s ' ' <<<"$output") == *"ds2 IPv6 WAN $DS2_WAN6, LAN $DS2_LAN6/64, host $H_DS2_IP6 "* ]]
	[[ $(tr -s ' ' <<<"$output") == *"eim1 also h-eim1b $H_EIM1B_IP/24 on the switch sw-eim1"* ]]
}

@test "probe: a closed port answers with ICMP, so silence elsewhere is a drop" {
	run probe pub map "$STUN_IP1:9" "$STUN_IP1:3478"
	[ "$status" -eq 3 ]
	[ "${lines[0]}" = "$STUN_IP1:9 unreachable" ]
	[[ ${lines[1]} == "$STUN_IP1:3478 $PUB_IP:"* ]]
}

@test "pub: no NAT, its mapped address is its own (IPv4 and IPv6)" {
	assert_eim pub "$PUB_IP" 40000
	run probe pub map --from-port 40000 "[$STUN_IP6_1]:3478"
	[ "$status" -eq 0 ]
	[ "$output" = "[$STUN_IP6_1]:3478 [$PUB_IP6]:40000" ]
}

@test "eim1, eim2: endpoint-independent mapping on their WAN" {
	assert_eim h-eim1 "$EIM1_WAN" 40001
	assert_eim h-eim2 "$EIM2_WAN" 40002
}

@test "edm1, edm2: endpoint-dependent mapping on their WAN" {
	assert_edm h-edm1 "$EDM1_WAN"
	assert_edm h-edm2 "$EDM2_WAN"
}

@test "home behind cgnat: double NAT, mapped to the outer router's WAN, EIM" {
	assert_eim h-dbl "$CGNAT_WAN" 40003
}

@test "fullcone, rcone, upnp, hair: endpoint-independent mapping" {
	assert_eim h-full "$FULL_WAN" 40004
	assert_eim h-rcone "$RCONE_WAN" 40005
	assert_eim h-upnp "$UPNP_WAN" 40006
	assert_eim h-hair "$HAIR_WAN" 40007
}

@test "block: no UDP answer at all, TCP 443 passes (masqueraded), other TCP does not" {
	local tcp rc
	start_echo pub --tcp "$PUB_IP:443" --tcp "$PUB_IP:8443"
	probe h-block tcp "$PUB_IP:8443" 3>&- &
	tcp=$!
	run probe h-block map "$STUN_IP1:3478" "$STUN_IP2:3478" "$STUN_IP1:3479"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	rc=0
	wait "$tcp" || rc=$?
	[ "$rc" -eq 3 ]
	run probe h-block tcp "$PUB_IP:443"
	[ "$status" -eq 0 ]
	[[ $output == "$BLOCK_WAN:"* ]]
	run probe h-eim1 tcp "$PUB_IP:8443"
	[ "$status" -eq 0 ]
	[[ $output == "$EIM1_WAN:"* ]]
}

@test "fullcone: endpoint-independent filtering (another address and port gets in)" {
	[ "$(admitted h-full)" = "$STUN_IP1:3478
$STUN_IP1:3479
$STUN_IP2:3478
$STUN_IP2:4000" ]
}

@test "rcone: address-dependent filtering (same address any port, not another address)" {
	[ "$(admitted h-rcone)" = "$STUN_IP1:3478
$STUN_IP1:3479" ]
}

@test "eim1, eim2, edm1, edm2, double NAT, upnp, hair: address-and-port-dependent filtering" {
	local h
	for h in h-eim1 h-eim2 h-edm1 h-edm2 h-dbl h-upnp h-hair; do
		admitted "$h" >"$BATS_TEST_TMPDIR/$h" 3>&- &
	done
	wait
	for h in h-eim1 h-eim2 h-edm1 h-edm2 h-dbl h-upnp h-hair; do
		echo "$h: $(cat "$BATS_TEST_TMPDIR/$h")"
		[ "$(cat "$BATS_TEST_TMPDIR/$h")" = "$STUN_IP1:3478" ]
	done
}

@test "unsolicited inbound is dropped silently: to every router's WAN, and routed to its LAN" {
	local v wan lan host home rc dests=() routes=()
	for v in EIM1 EIM2 EDM1 EDM2 BLOCK FULL RCONE UPNP HAIR DS1 DS2; do
		wan=${v}_WAN lan=${v}_LAN host=H_${v}_IP
		dests+=("${!wan}:5555" "${!host}:5555")
		routes+=("route add ${!lan%.*}.0/24 via ${!wan}")
	done
	dests+=("$CGNAT_WAN:5555" "$HOME_WAN:5555")
	routes+=("route add ${CGNAT_LAN%.*}.0/24 via $CGNAT_WAN")
	# pub routes the private LANs through the routers' WANs, as a neighbour on a real segment could.
	touch "$BATS_TEST_TMPDIR/routes"
	printf '%s\n' "${routes[@]}" | ip -n "$LAB_PREFIX-pub" -batch -
	[[ $(ip -n "$LAB_PREFIX-pub" route get "$H_EIM1_IP") == *" via $EIM1_WAN "* ]]
	# Nobody listens on port 5555: a packet let through would come back as ICMP port unreachable (see
	# the probe test above), or as an answer; a drop is silence.
	probe cgnat map "$HOME_WAN:5555" >"$BATS_TEST_TMPDIR/home" 3>&- &
	home=$!
	run probe pub map "${dests[@]}"
	echo "$output"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	# The inner router of the double NAT, from the carrier's side.
	rc=0
	wait "$home" || rc=$?
	cat "$BATS_TEST_TMPDIR/home"
	[ "$rc" -eq 3 ]
	[ ! -s "$BATS_TEST_TMPDIR/home" ]
}

@test "ds1, ds2: IPv4 EIM on the WAN with APD filtering; IPv6 not translated, filtered the same" {
	assert_eim h-ds1 "$DS1_WAN" 40011
	assert_eim h-ds2 "$DS2_WAN" 40012
	[ "$(admitted h-ds1)" = "$STUN_IP1:3478" ]
	# IPv6: the host's own address and port, whatever the destination (no NAT66)
	run probe h-ds1 map --from-port 40013 "[$STUN_IP6_1]:3478" "[$STUN_IP6_2]:3478" "[$STUN_IP6_1]:3479"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "[$STUN_IP6_1]:3478 [$H_DS1_IP6]:40013
[$STUN_IP6_2]:3478 [$H_DS1_IP6]:40013
[$STUN_IP6_1]:3479 [$H_DS1_IP6]:40013" ]
	# only the endpoint it sent to gets back in (conntrack, address and port)
	[ "$(probe h-ds2 filter "[$STUN_IP6_1]:3478")" = "[$STUN_IP6_1]:3478" ]
	"$LAB" exec h-ds1 ip -6 route get "$H_DS2_IP6" | grep -q "via $DS1_LAN6 "
	"$LAB" exec stun ip -6 route get "$H_DS2_IP6" | grep -q "via $DS2_WAN6 "
	"$LAB" exec ds1 ip -6 route get "$H_DS2_IP6" | grep -q "via $DS2_WAN6 "
}

@test "ds1, ds2: unsolicited inbound IPv6 is dropped silently; a path opened from both sides passes" {
	# A closed IPv6 port answers with ICMPv6, so silence is a drop here too.
	run probe pub map "[$STUN_IP6_1]:9"
	[ "$output" = "[$STUN_IP6_1]:9 unreachable" ]
	# Nobody listens on 5555: from inet, and from the other ds host, nothing comes back; nor to ping.
	run probe pub map "[$H_DS1_IP6]:5555" "[$H_DS2_IP6]:5555" "[$DS1_WAN6]:5555" "[$DS1_LAN6]:5555"
	echo "$output"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	run probe h-ds2 map "[$H_DS1_IP6]:5555"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	run "$LAB" exec pub ping -c 1 -W 1 "$H_DS1_IP6"
	[ "$status" -ne 0 ]
	# h-ds1 sends first (ds2 drops it), then h-ds2 answers to it: both routers pass that, and the
	# echo server on h-ds1 is heard back on h-ds2, addresses and ports unchanged.
	run probe h-ds1 map --from-port 40014 "[$H_DS2_IP6]:40015"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	start_echo h-ds1 --bind "[$H_DS1_IP6]:40014"
	run probe h-ds2 map --from-port 40015 "[$H_DS1_IP6]:40014"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "[$H_DS1_IP6]:40014 [$H_DS2_IP6]:40015" ]
	"$LAB" exec ds1 conntrack -L -f ipv6 -p udp --orig-port-src 40014 2>/dev/null |
	    grep "src=$H_DS1_IP6 dst=$H_DS2_IP6 " | grep -v UNREPLIED
}

@test "eim1's LAN: h-eim1 and h-eim1b meet on their switch, unseen by eim1; both masqueraded alike" {
	start_echo h-eim1b --bind "$H_EIM1B_IP:40016"
	run probe h-eim1 map --from-port 40017 "$H_EIM1B_IP:40016"
	[ "$status" -eq 0 ]
	[ "$output" = "$H_EIM1B_IP:40016 $H_EIM1_IP:40017" ]
	assert_eim h-eim1b "$EIM1_WAN" 40018
	[ "$(admitted h-eim1b)" = "$STUN_IP1:3478" ]
	# eim1 tracked h-eim1b's flows to the stun host, none between the two hosts
	run "$LAB" exec eim1 conntrack -L 2>/dev/null
	[[ $output == *"src=$H_EIM1B_IP dst=$STUN_IP1 "* ]]
	[[ $output != *"dst=$H_EIM1B_IP "* ]]
	# the switch: a bridge with the router's port and one per host, no address
	[ "$("$LAB" exec sw-eim1 ip -br link show master br0 | awk '{print $1}' | sed 's/@.*//' | sort |
	    tr '\n' ' ')" = "gw h-eim1 h-eim1b " ]
	[ -z "$("$LAB" exec sw-eim1 ip -4 addr show scope global)" ]
}

@test "delay: ds1's IPv6 waits, IPv4 is not queued; addresses unchanged; off removes it all" {
	local pid
	touch "$BATS_TEST_TMPDIR/delay"
	"$LAB" delay ds1 6 150
	pid=$(cat "/run/meshkit-lab/$LAB_PREFIX/delay-ds1-6.pid")
	in_ns "$LAB_PREFIX-ds1" "$pid"
	# through ds1 and back: 2 x 150 ms at least, every time
	run "$LAB" exec h-ds1 ping -c 3 -i 0.2 -W 2 "$PUB_IP6"
	echo "$output"
	[[ $output == *" 3 received"* ]]
	[ "$(sed -n 's|^rtt min/avg/max/mdev = \([0-9]*\)\..*|\1|p' <<<"$output")" -ge 300 ]
	# the same mapping as without the delay: the host's own address and port
	run probe h-ds1 map --timeout 3 --from-port 40019 "[$STUN_IP6_1]:3478"
	[ "$output" = "[$STUN_IP6_1]:3478 [$H_DS1_IP6]:40019" ]
	# only IPv6 is queued
	"$LAB" exec ds1 ip6tables -t mangle -S FORWARD | grep -q -- '-j NFQUEUE --queue-num 6 '
	run "$LAB" exec ds1 iptables -t mangle -S FORWARD
	[[ $output != *NFQUEUE* ]]
	assert_eim h-ds1 "$DS1_WAN" 40020
	run "$LAB" status
	[[ $output == *"delay element: ds1 IPv6 (pid $pid)"* ]]
	# one per family; bad input refused
	run "$LAB" delay ds1 6 10
	[ "$status" -eq 1 ]
	[[ $output == *"already delays IPv6"* ]]
	run "$LAB" delay ds1 5 10
	[ "$status" -eq 1 ]
	run "$LAB" delay h-ds1 4 10
	[ "$status" -eq 1 ]
	"$LAB" delay ds1 off
	rm "$BATS_TEST_TMPDIR/delay"
	poll 100 gone "$pid"
	[ ! -e "/run/meshkit-lab/$LAB_PREFIX/delay-ds1-6.pid" ]
	run "$LAB" exec ds1 ip6tables -t mangle -S FORWARD
	[[ $output != *NFQUEUE* ]]
	"$LAB" exec h-ds1 ping -c 1 -W 2 "$PUB_IP6" >/dev/null
}

@test "nat64: h-v6only has IPv6 only, and through 64:ff9b::/96 EIM on the WAN, APD filtering" {
	local s1 s2
	s1=$(nat64 "$STUN_IP1") s2=$(nat64 "$STUN_IP2")
	[ "$s1" = 64:ff9b::c612:a ]
	# No IPv4 but loopback's: no address, no route, nothing routable.
	[ -z "$("$LAB" exec h-v6only ip -4 addr show scope global)" ]
	[ -z "$("$LAB" exec h-v6only ip -4 route show table main)" ]
	run "$LAB" exec h-v6only ip route get "$STUN_IP1"
	[ "$status" -ne 0 ]
	[[ $output == *"Network is unreachable"* ]]
	"$LAB" exec h-v6only ip -6 addr show dev eth0 | grep -q "inet6 $H_V6ONLY_IP6/64 "
	[[ $("$LAB" exec h-v6only ip -6 route show default) == "default via $NAT64_LAN dev eth0 "* ]]
	# One socket, three endpoints: one mapping, on the WAN, the source port kept.
	run probe h-v6only map --from-port 40009 "[$s1]:3478" "[$s2]:3478" "[$s1]:3479"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "[$s1]:3478 $NAT64_WAN:40009
[$s2]:3478 $NAT64_WAN:40009
[$s1]:3479 $NAT64_WAN:40009" ]
	# Only the endpoint it sent to gets back in.
	[ "$(probe h-v6only filter "[$s1]:3478")" = "[$s1]:3478" ]
	# ICMP errors come back translated (so silence is a drop here too); no native IPv6 out, and
	# non-global IPv4 in the well-known prefix is refused.
	run probe h-v6only map "[$s1]:9" "[$STUN_IP6_1]:3478" "[$(nat64 "$H_EIM1_IP")]:3478"
	echo "$output"
	[ "$status" -eq 3 ]
	[ "$output" = "[$s1]:9 unreachable
[$STUN_IP6_1]:3478 unreachable
[$(nat64 "$H_EIM1_IP")]:3478 unreachable" ]
}

@test "nat64: unsolicited inbound is dropped silently, to its WAN and routed to tayga's pool" {
	local pool
	run probe h-v6only map --from-port 40010 "[$(nat64 "$STUN_IP1")]:3478"
	[ "$status" -eq 0 ]
	# tayga gave the host an address from its pool; the router's conntrack shows it.
	pool=$("$LAB" exec nat64 conntrack -L -f ipv4 -p udp --orig-port-src 40010 2>/dev/null |
	    grep -o 'src=[0-9.]*' | head -n 1)
	pool=${pool#src=}
	echo "pool address: $pool"
	[[ $pool == "${NAT64_POOL%.0/24}".* ]]
	touch "$BATS_TEST_TMPDIR/routes"
	ip -n "$LAB_PREFIX-pub" route add "$NAT64_POOL" via "$NAT64_WAN"
	# Nobody listens on 5555; 40010 is the host's live mapping, from its inside.
	run probe pub map "$NAT64_WAN:5555" "$pool:5555" "$pool:40010" "${NAT64_POOL%.0/24}.1:5555"
	echo "$output"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
}

# Address $1 in nsp64's network-specific prefix (a /96), as probe.py prints it.
nsp64() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	printf '%s%x:%x\n' "${NSP64_PREFIX%/96}" $(($1 << 8 | $2)) $(($3 << 8 | $4))
}

@test "nsp64: h-v6nsp has IPv6 only; its network-specific prefix is served (EIM), the well-known one is not" {
	local s1 s2
	s1=$(nsp64 "$STUN_IP1") s2=$(nsp64 "$STUN_IP2")
	[ "$NSP64_PREFIX" = fd64:6e:0:64::/96 ]
	[ "$s1" = fd64:6e:0:64::c612:a ]
	[ -z "$("$LAB" exec h-v6nsp ip -4 addr show scope global)" ]
	[ -z "$("$LAB" exec h-v6nsp ip -4 route show table main)" ]
	"$LAB" exec h-v6nsp ip -6 addr show dev eth0 | grep -q "inet6 $H_V6NSP_IP6/64 "
	[ "$("$LAB" exec nsp64 cat /proc/sys/net/ipv6/conf/wan0/disable_ipv6)" = 1 ]
	# Through the NSP: one mapping on the WAN, the source port kept; only the endpoint sent to
	# gets back in.
	run probe h-v6nsp map --from-port 40011 "[$s1]:3478" "[$s2]:3478" "[$s1]:3479"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "[$s1]:3478 $NSP64_WAN:40011
[$s2]:3478 $NSP64_WAN:40011
[$s1]:3479 $NSP64_WAN:40011" ]
	[ "$(probe h-v6nsp filter "[$s1]:3478")" = "[$s1]:3478" ]
	# The well-known prefix, to the same server, and native IPv6: refused at the router.
	run probe h-v6nsp map "[$(nat64 "$STUN_IP1")]:3478" "[$STUN_IP6_1]:3478"
	echo "$output"
	[ "$status" -eq 3 ]
	[ "$output" = "[$(nat64 "$STUN_IP1")]:3478 unreachable
[$STUN_IP6_1]:3478 unreachable" ]
}

@test "nsp64: its DNS64 gives ipv4only.arpa and IPv4-only names in the NSP, native AAAA as they are" {
	run "$LAB" exec h-v6nsp cat /etc/resolv.conf
	[[ $output == *"nameserver $NSP64_LAN"* ]]
	# RFC 7050: both well-known addresses, synthesized in the NSP.
	run "$LAB" exec h-v6nsp getent ahostsv6 ipv4only.arpa
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(awk '{print $1}' <<<"$output" | sort -u)" = "$(nsp64 192.0.0.170)
$(nsp64 192.0.0.171)" ]
	run "$LAB" exec h-v6nsp getent ahostsv6 relay.lab
	[ "$(awk '{print $1}' <<<"$output" | sort -u)" = "$(nsp64 "$RELAY_IP")" ]
	run "$LAB" exec h-v6nsp getent ahostsv6 pub.lab
	[ "$(awk '{print $1}' <<<"$output" | sort -u)" = "$PUB_IP6" ]
	# Every A record of a name, and a name nobody has is no name.
	run "$LAB" exec h-v6nsp getent ahostsv6 stun.lab
	[ "$(awk '{print $1}' <<<"$output" | sort -u)" = "$(nsp64 "$STUN_IP1")
$(nsp64 "$STUN_IP2")" ]
	run "$LAB" exec h-v6nsp getent ahostsv6 nosuch.lab
	[ "$status" -ne 0 ]
	# h-v6only, the well-known-prefix NAT64's host, has no such resolver.
	[ ! -e "/etc/netns/$LAB_PREFIX-h-v6only" ]
}

# A new socket sends to the mapping of another: hair hands the packet back from the sender's own mapping
# (RFC 4787 REQ-9), eim1 (the same NAT without the hairpin rules) lets it reach the router itself, which
# answers port unreachable.
@test "hair hairpins, from its WAN address and the sender's mapping; eim1 does not" {
	local mapped sender source
	run probe h-hair hairpin --from-port 40008 "$STUN_IP1:3478"
	echo "$output"
	[ "$status" -eq 0 ]
	read -r mapped sender source <<<"$output"
	[ "$mapped" = "$HAIR_WAN:40008" ]
	[[ $sender == "$HAIR_WAN":[0-9]* ]]
	[ "$sender" != "$mapped" ]
	[ "$source" = "$sender" ]
	run probe h-eim1 hairpin --from-port 40008 "$STUN_IP1:3478"
	echo "$output"
	[ "$status" -eq 3 ]
	read -r mapped sender source <<<"$output"
	[ "$mapped" = "$EIM1_WAN:40008" ]
	[[ $sender == "$EIM1_WAN":[0-9]* ]]
	[ "$source" = unreachable ]
}

@test "no other router hairpins: eim2, edm1, edm2, double NAT, fullcone, rcone, upnp" {
	local h wan out
	for h in h-eim2 h-edm1 h-edm2 h-dbl h-full h-rcone h-upnp; do
		{ probe "$h" hairpin "$STUN_IP1:3478" || echo "exit $?"; } >"$BATS_TEST_TMPDIR/$h" 3>&- &
	done
	wait
	# The double NAT's mappings are on the outer router; edm1 and edm2 map to random ports.
	for h in eim2:EIM2 edm1:EDM1 edm2:EDM2 dbl:CGNAT full:FULL rcone:RCONE upnp:UPNP; do
		wan=${h#*:}_WAN
		out=$(cat "$BATS_TEST_TMPDIR/h-${h%:*}")
		echo "h-${h%:*}: $out"
		[[ $out == "${!wan}":[0-9]*" ${!wan}":[0-9]*" unreachable"$'\n'"exit 3" ]]
	done
}

@test "miniupnpd: a NAT-PMP mapping admits pub, and stop closes it again" {
	start_echo h-upnp --bind 0.0.0.0:4000
	run probe pub map "$UPNP_WAN:4000"
	[ "$status" -eq 3 ]
	touch "$BATS_TEST_TMPDIR/upnp"
	"$LAB" miniupnpd start
	run "$LAB" exec h-upnp timeout 5 natpmpc -g "$UPNP_LAN_GW" -a 4000 4000 udp 60
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"Public IP address : $UPNP_WAN"* ]]
	[[ $output == *"Mapped public port 4000 protocol UDP to local port 4000"* ]]
	grep -q "^UDP:4000:$H_UPNP_IP:4000:" "$UPNP_LEASE_FILE"
	run probe pub map "$UPNP_WAN:4000"
	[ "$status" -eq 0 ]
	[[ $output == "$UPNP_WAN:4000 $PUB_IP:"* ]]
	"$LAB" miniupnpd stop
	run probe pub map "$UPNP_WAN:4000"
	[ "$status" -eq 3 ]
	[ -z "$output" ]
}

@test "down removes a second lab's namespaces, processes and state, and is idempotent" {
	local p2="${LAB_PREFIX}b" pid ns pids
	echo "$p2" >"$BATS_TEST_TMPDIR/lab2"
	LAB_PREFIX=$p2 "$LAB" up >/dev/null
	[ "$(lab_ns "$p2" | wc -l)" -eq 36 ]
	LAB_PREFIX=$p2 "$LAB" miniupnpd start
	LAB_PREFIX=$p2 "$LAB" exec pub sleep 60 </dev/null >/dev/null 3>&- &
	pid=$!
	poll 100 in_ns "$p2-pub" "$pid"
	# sleep, miniupnpd, coturn, tayga, and nsp64's tayga and two unbounds
	mapfile -t pids < <(for ns in $(lab_ns "$p2"); do ip netns pids "$ns"; done)
	echo "${pids[@]}"
	[ "${#pids[@]}" -eq 7 ]
	tayga_in_ns "$p2"
	[ -f "/etc/netns/$p2-h-v6nsp/resolv.conf" ]
	LAB_PREFIX=$p2 "$LAB" down
	[ -z "$(lab_ns "$p2")" ]
	[ ! -e "/run/meshkit-lab/$p2" ]
	[ ! -e "/etc/netns/$p2-h-v6nsp" ]
	gone "${pids[@]}"
	run env LAB_PREFIX="$p2" "$LAB" down
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run env LAB_PREFIX="$p2" "$LAB" env
	[ "$status" -eq 1 ]
	# The first lab is untouched.
	[ "$(lab_ns "$LAB_PREFIX" | wc -l)" -eq 36 ]
	tayga_in_ns "$LAB_PREFIX"
	diff "$BATS_FILE_TMPDIR/host-links" <(ip -o link show | awk -F': ' '{print $2}' | sort)
}

@test "a failed up removes what it had built" {
	local p3="${LAB_PREFIX}f"
	mkdir "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\nexit 1\n' >"$BATS_TEST_TMPDIR/bin/nft"
	chmod +x "$BATS_TEST_TMPDIR/bin/nft"
	echo "$p3" >"$BATS_TEST_TMPDIR/lab2"
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" LAB_PREFIX="$p3" "$LAB" up
	[ "$status" -ne 0 ]
	[[ $output == *"up failed"* ]]
	[ -z "$(lab_ns "$p3")" ]
	[ ! -e "/run/meshkit-lab/$p3" ]
}

@test "an up interrupted while tayga starts removes everything, tayga by its pid" {
	local p4="${LAB_PREFIX}i" up pid rc
	mkdir "$BATS_TEST_TMPDIR/bin"
	# A tayga that never makes its TUN: up waits for it until interrupted.
	printf '#!/bin/sh\nexec sleep 60\n' >"$BATS_TEST_TMPDIR/bin/tayga"
	chmod +x "$BATS_TEST_TMPDIR/bin/tayga"
	echo "$p4" >"$BATS_TEST_TMPDIR/lab2"
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" LAB_PREFIX=$p4 "$LAB" up </dev/null >/dev/null \
	    2>"$BATS_TEST_TMPDIR/up.err" 3>&- &
	up=$!
	poll 1000 tayga_in_ns "$p4"
	pid=$(cat "/run/meshkit-lab/$p4/tayga.pid")
	kill -TERM "$up"
	rc=0
	wait "$up" || rc=$?
	cat "$BATS_TEST_TMPDIR/up.err"
	# 143 as a rule; once in CI's run, bash 5.2 reported "trap: unexpected
	# EOF while looking for matching `)'" for a TERM that came while it was
	# inside a command substitution, and exited otherwise (session note).
	# What this test is about is that up fails and leaves nothing:
	[ "$rc" -ne 0 ]
	grep -q "up failed" "$BATS_TEST_TMPDIR/up.err"
	[ -z "$(lab_ns "$p4")" ]
	[ ! -e "/run/meshkit-lab/$p4" ]
	gone "$pid"
}

@test "a tayga that will not start fails up at once, with its log, and leaves nothing" {
	local p5="${LAB_PREFIX}t"
	mkdir "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\necho "tayga: no good" >&2\nexit 1\n' >"$BATS_TEST_TMPDIR/bin/tayga"
	chmod +x "$BATS_TEST_TMPDIR/bin/tayga"
	echo "$p5" >"$BATS_TEST_TMPDIR/lab2"
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" LAB_PREFIX="$p5" "$LAB" up
	echo "$output"
	[ "$status" -eq 1 ]
	# noticed by its exit, not after the whole wait for a TUN that will
	# never come
	[[ $output == *"tayga: no good"*"tayga did not start: it exited"*"up failed"* ]]
	[ -z "$(lab_ns "$p5")" ]
	[ ! -e "/run/meshkit-lab/$p5" ]
}
