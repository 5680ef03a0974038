#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# meshkit's NAT lab: network namespaces joined by veth pairs, nftables NAT routers.
#
#   lab.sh up | down | status | env | ns HOST | exec HOST CMD... | miniupnpd start|stop
#
# Namespaces are named "$LAB_PREFIX-HOST"; LAB_PREFIX defaults to "mk<PID of the calling shell>", so
# two runs never clash and `eval "$(lab.sh up)"` followed by `lab.sh down` from one shell finds its own lab.
#
#   inet: a bridge (br0, ip_forward=0) that is the whole fake internet: 198.18.0.0/15 and 2001:db8::/64,
#   every public host and router WAN on-link. No namespace has a link to the host namespace.
#
#   public hosts          stun 198.18.0.10 198.18.0.11 2001:db8::10 2001:db8::11 (RFC 5780 needs two)
#                         stun2 198.18.0.12   relay 198.18.0.20 2001:db8::20   pub 198.18.0.30 2001:db8::30
#   router   WAN          LAN            host    NAT
#   eim1     198.18.1.1   10.1.0.1/24    h-eim1  masquerade: EIM, address-and-port-dependent filtering
#   eim2     198.18.1.2   10.2.0.1/24    h-eim2  the same
#   edm1     198.18.1.3   10.3.0.1/24    h-edm1  masquerade fully-random: EDM (a random port per destination)
#   edm2     198.18.1.4   10.4.0.1/24    h-edm2  the same
#   cgnat    198.18.1.5   100.64.0.1/24  home    carrier-grade NAT, EIM
#   home     100.64.0.2   10.5.0.1/24    h-dbl   EIM behind cgnat: double NAT
#   block    198.18.1.6   10.6.0.1/24    h-block only TCP 443 out (and its replies); UDP dropped silently
#   fullcone 198.18.1.7   10.7.0.1/24    h-full  EIM, endpoint-independent filtering (emulated, see below)
#   rcone    198.18.1.8   10.8.0.1/24    h-rcone EIM, address-dependent filtering (emulated)
#   upnp     198.18.1.9   10.9.0.1/24    h-upnp  EIM masquerade plus miniupnpd (UPnP-IGD, NAT-PMP, PCP)
#   hair     198.18.1.10  10.10.0.1/24   h-hair  EIM masquerade that hairpins UDP (NAT loopback, emulated)
#
# Every router has policy-drop input and forward chains (unsolicited inbound vanishes: no ICMP), forwards
# only between its LAN and WAN, and does not hairpin, except hair. Linux conntrack filters
# address-and-port-dependent; fullcone and rcone widen that with an nft set of recently used (remote
# address .) source ports, filled in forward for lan->wan UDP and used by a DNAT rule in prerouting. hair
# keeps such a set of its host's source ports, its mappings: a UDP packet from the host to the WAN address
# and one of those ports is DNATed back to the host and SNATed to the WAN address with the sender's port,
# so it arrives from the sender's own mapping (RFC 4787 REQ-9); hair sends no ICMP redirects for it, and
# its filtering from the WAN side stays that of eim1. That emulation is exact only with one host per LAN
# and preserved ports, which is what this lab has. A packet to a router's own WAN address that no
# hairpin takes reaches the router itself, which answers ICMP port unreachable.
#
# IPv6 is on only in inet's hosts that need it (stun, relay, pub); no NAT66.
#
# `up` does not start miniupnpd: its ext_perform_stun check needs a STUN server that honours
# CHANGE-REQUEST. `lab.sh miniupnpd start` starts its own coturn on the stun host, on STUN_IP1/STUN_IP2
# ports 3490 and 3491 (so 3478/3479 stay free for tests' servers), then miniupnpd on the upnp router;
# `lab.sh miniupnpd stop` stops both. State (pid files, configs, logs, lease file) lives in
# /run/meshkit-lab/$LAB_PREFIX/.
set -eu -o pipefail

prog=lab.sh
STATE_ROOT=/run/meshkit-lab
UPNP_STUN_PORT=3490
UPNP_HTTP_PORT=5000

die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
usage() {
	cat <<'EOF'
usage: lab.sh up                  build the lab; prints export lines for eval
       lab.sh down                stop everything in it and remove it (idempotent)
       lab.sh status              namespaces, addresses, router types, conntrack counts
       lab.sh env                 print the export lines again
       lab.sh ns HOST             the namespace name of HOST
       lab.sh exec HOST CMD...    run CMD in HOST's namespace
       lab.sh miniupnpd start|stop
LAB_PREFIX (default mk<PID of the calling shell>) names the lab; see the head of this script.
EOF
}

bad_usage() { usage >&2; exit 2; }

LAB_PREFIX=${LAB_PREFIX:-mk$PPID}
[[ $LAB_PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]] || die "bad LAB_PREFIX: $LAB_PREFIX"
STATE=$STATE_ROOT/$LAB_PREFIX

STUN1=198.18.0.10 STUN2=198.18.0.11
# Public hosts on inet: name, IPv4 addresses, IPv6 addresses (- for none).
PUBLIC=(
	"stun  $STUN1,$STUN2 2001:db8::10,2001:db8::11"
	"stun2 198.18.0.12             -"
	"relay 198.18.0.20             2001:db8::20"
	"pub   198.18.0.30             2001:db8::30"
)
# Routers: name, type, variable stem (of the exported names), parent namespace, WAN address, LAN /24
# (without .0), the one host behind it. A router behind another router has that one's LAN .2 as its WAN.
ROUTERS=(
	"eim1     eim   EIM1   inet  198.18.1.1 10.1.0   h-eim1"
	"eim2     eim   EIM2   inet  198.18.1.2 10.2.0   h-eim2"
	"edm1     edm   EDM1   inet  198.18.1.3 10.3.0   h-edm1"
	"edm2     edm   EDM2   inet  198.18.1.4 10.4.0   h-edm2"
	"cgnat    eim   CGNAT  inet  198.18.1.5 100.64.0 home"
	"home     eim   HOME   cgnat 100.64.0.2 10.5.0   h-dbl"
	"block    block BLOCK  inet  198.18.1.6 10.6.0   h-block"
	"fullcone full  FULL   inet  198.18.1.7 10.7.0   h-full"
	"rcone    rcone RCONE  inet  198.18.1.8 10.8.0   h-rcone"
	"upnp     upnp  UPNP   inet  198.18.1.9 10.9.0   h-upnp"
	"hair     hair  HAIR   inet  198.18.1.10 10.10.0  h-hair"
)
PUBLIC_NET4=15
PUBLIC_NET6=64

nsname() { printf '%s-%s\n' "$LAB_PREFIX" "$1"; }

# Host names, derived once from the tables: every namespace, the routers, the hosts behind routers.
HOSTS=inet ROUTER_NAMES='' LAN_HOSTS=''
for _p in "${PUBLIC[@]}"; do HOSTS+=" ${_p%% *}"; done
for _p in "${ROUTERS[@]}"; do ROUTER_NAMES+=" ${_p%% *}"; done
for _p in "${ROUTERS[@]}"; do
	[[ " $ROUTER_NAMES " == *" ${_p##* } "* ]] || LAN_HOSTS+=" ${_p##* }"
done
HOSTS+="$ROUTER_NAMES$LAN_HOSTS"
unset _p

is_router() { [[ " $ROUTER_NAMES " == *" $1 "* ]]; }
known_host() { [[ " $HOSTS " == *" $1 "* ]]; }
# The interface of host $1 towards its router: routers have wan0, hosts eth0.
uplink() { if is_router "$1"; then echo wan0; else echo eth0; fi; }
# Set name typ stem parent wan lan child (declare them local first) from router $1's line.
router_get() {
	local r
	for r in "${ROUTERS[@]}"; do
		[ "${r%% *}" = "$1" ] || continue
		read -r name typ stem parent wan lan child <<<"$r"
		return 0
	done
	die "no router $1"
}

lab_env() {
	local p r name v4 v6 typ stem parent wan lan child hv
	echo "export LAB_PREFIX=$LAB_PREFIX"
	for p in "${PUBLIC[@]}"; do
		read -r name v4 v6 <<<"$p"
		case $name in
		stun)
			echo "export STUN_IP1=${v4%,*} STUN_IP2=${v4#*,}"
			echo "export STUN_IP6_1=${v6%,*} STUN_IP6_2=${v6#*,}"
			;;
		stun2)	echo "export STUN2_IP=$v4" ;;
		relay)	echo "export RELAY_IP=$v4 RELAY_IP6=$v6" ;;
		pub)	echo "export PUB_IP=$v4 PUB_IP6=$v6" ;;
		esac
	done
	for r in "${ROUTERS[@]}"; do
		read -r name typ stem parent wan lan child <<<"$r"
		echo "export ${stem}_WAN=$wan ${stem}_LAN=$lan.1"
		if ! is_router "$child"; then
			hv=${child^^}
			echo "export ${hv//-/_}_IP=$lan.2"
		fi
	done
	router_get upnp
	echo "export UPNP_LAN_GW=$lan.1 UPNP_URL=http://$lan.1:$UPNP_HTTP_PORT/rootDesc.xml"
	echo "export UPNP_LEASE_FILE=$STATE/upnp.leases"
}

# The nftables ruleset of one router; $1 type, $2 LAN host address, $3 WAN address.
router_nft() {
	local typ=$1 host=$2 wan=$3 fwd_pre='' fwd_in='' fwd_out='iifname "lan0" oifname "wan0" accept'
	local pre='' post='' in_extra='' sets='' masq=masquerade
	case $typ in
	eim|upnp) ;;
	edm)	masq="masquerade fully-random" ;;
	block)	fwd_out='iifname "lan0" oifname "wan0" tcp dport 443 accept' ;;
	full)
		# Endpoint-independent filtering: anyone may reach a port the host used lately.
		sets='set eif { type inet_service; flags timeout; timeout 60s; }'
		fwd_pre='iifname "lan0" oifname "wan0" meta l4proto udp update @eif { udp sport timeout 60s }'
		fwd_in='iifname "wan0" oifname "lan0" ct status dnat accept'
		pre="iifname \"wan0\" udp dport @eif dnat ip to $host"
		;;
	rcone)
		# Address-dependent filtering: an address the host sent to may answer from any port.
		sets='set adf { type ipv4_addr . inet_service; flags timeout; timeout 60s; }'
		fwd_pre='iifname "lan0" oifname "wan0" meta l4proto udp update @adf { ip daddr . udp sport timeout 60s }'
		fwd_in='iifname "wan0" oifname "lan0" ct status dnat accept'
		pre="iifname \"wan0\" ip saddr . udp dport @adf dnat ip to $host"
		;;
	hair)
		# Hairpinning: the host sending to the WAN address and a port it is mapped on (one it used
		# lately) gets the packet back, from the WAN address and the sender's port (its mapping).
		sets='set hp { type inet_service; flags timeout; timeout 60s; }'
		fwd_pre='iifname "lan0" oifname "wan0" meta l4proto udp update @hp { udp sport timeout 60s }'
		fwd_in='iifname "lan0" oifname "lan0" ct status dnat accept'
		pre="iifname \"lan0\" ip daddr $wan udp dport @hp dnat ip to $host"
		post="oifname \"lan0\" ip saddr $host ct status dnat snat ip to $wan"
		;;
	*)	die "unknown router type $typ" ;;
	esac
	if [ "$typ" = upnp ]; then
		# miniupnpd-nftables does not create its chains; it fills these. Its STUN check sends
		# CHANGE-REQUESTs, whose answers come from the stun host's other address and port.
		sets='chain miniupnpd { }
		chain prerouting_miniupnpd { }
		chain postrouting_miniupnpd { }'
		fwd_pre='jump miniupnpd'
		pre='jump prerouting_miniupnpd'
		post='jump postrouting_miniupnpd'
		in_extra="iifname \"wan0\" ip saddr { $STUN1, $STUN2 } udp sport { $UPNP_STUN_PORT, $((UPNP_STUN_PORT + 1)) } accept"
	fi
	cat <<EOF
table inet lab {
	$sets
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		iifname "lan0" accept
		$in_extra
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		$fwd_pre
		ct state established,related accept
		$fwd_in
		$fwd_out
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		$pre
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		$post
		oifname "wan0" $masq
	}
}
EOF
}

# Sysctls of a new namespace, as shell commands; $1 role: v6 (a public host with IPv6), router, or
# anything else (the switch, hosts); $2 a router's type. Set before any link exists, so new interfaces
# inherit "default".
ns_sysctls() {
	local s=/proc/sys/net
	if [ "$1" = v6 ]; then
		echo "echo 0 >$s/ipv6/conf/default/accept_ra; echo 0 >$s/ipv6/conf/all/accept_ra"
		echo "echo 0 >$s/ipv6/conf/default/accept_dad"
	else
		echo "echo 1 >$s/ipv6/conf/default/disable_ipv6; echo 1 >$s/ipv6/conf/all/disable_ipv6"
	fi
	if [ "$1" = router ]; then
		echo "echo 1 >$s/ipv4/ip_forward"
		# A hairpinned packet leaves by the interface it came in on, which makes Linux send the host
		# an ICMP redirect; a NAT sends none.
		[ "${2:-}" != hair ] ||
		    echo "echo 0 >$s/ipv4/conf/all/send_redirects; echo 0 >$s/ipv4/conf/default/send_redirects"
	else
		echo "echo 0 >$s/ipv4/ip_forward"
	fi
}

# All named network namespaces. ip netns list complains on stderr about one that another lab is deleting.
netns_names() {
	ip netns list 2>/dev/null | awk '{print $1}'
}

# The namespaces of this lab that exist.
lab_namespaces() {
	local h list
	list=$(netns_names)
	for h in $HOSTS; do
		! grep -qx -- "$(nsname "$h")" <<<"$list" || nsname "$h"
	done
}

lab_exists() {
	[ -d "$STATE" ] || [ -n "$(lab_namespaces)" ]
}

up_failed() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$rc" != 0 ]; then
		echo "$prog: up failed; removing the half-built lab $LAB_PREFIX" >&2
		lab_down || true
	fi
	exit "$rc"
}

lab_up() {
	local p r name v4 v6 typ stem parent wan lan child a role inet_ns ns b
	[ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces)"
	command -v nft >/dev/null || die "nft not found (apt-get install nftables)"
	lab_exists && die "lab $LAB_PREFIX is already up (run: LAB_PREFIX=$LAB_PREFIX $0 down)"
	trap up_failed EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$STATE"

	# Namespaces and their sysctls (and routers' rulesets) before any link.
	inet_ns=$(nsname inet)
	ip netns add "$inet_ns"
	ip netns exec "$inet_ns" sh -ec "$(ns_sysctls inet)"
	for p in "${PUBLIC[@]}"; do
		read -r name v4 v6 <<<"$p"
		role=host
		[ "$v6" = - ] || role=v6
		ip netns add "$(nsname "$name")"
		ip netns exec "$(nsname "$name")" sh -ec "$(ns_sysctls $role)"
	done
	for r in "${ROUTERS[@]}"; do
		read -r name typ stem parent wan lan child <<<"$r"
		ns=$(nsname "$name")
		ip netns add "$ns"
		router_nft "$typ" "$lan.2" "$wan" |
		    ip netns exec "$ns" sh -ec "$(ns_sysctls router "$typ"); exec nft -f -"
		if ! is_router "$child"; then
			ip netns add "$(nsname "$child")"
			ip netns exec "$(nsname "$child")" sh -ec "$(ns_sysctls host)"
		fi
	done

	# inet: the switch, one port per public host and per router WAN on it.
	b="link set lo up
link add br0 type bridge mcast_snooping 0
link set br0 up"
	for p in "${PUBLIC[@]}"; do
		read -r name v4 v6 <<<"$p"
		b+="
link add $name type veth peer name eth0 netns $(nsname "$name")
link set $name master br0 up"
	done
	for r in "${ROUTERS[@]}"; do
		read -r name typ stem parent wan lan child <<<"$r"
		[ "$parent" = inet ] || continue
		b+="
link add $name type veth peer name wan0 netns $(nsname "$name")
link set $name master br0 up"
	done
	ip -n "$inet_ns" -batch - <<<"$b"

	for p in "${PUBLIC[@]}"; do
		read -r name v4 v6 <<<"$p"
		b="link set lo up
link set eth0 up"
		for a in ${v4//,/ }; do b+="
addr add $a/$PUBLIC_NET4 dev eth0"; done
		if [ "$v6" != - ]; then
			for a in ${v6//,/ }; do b+="
addr add $a/$PUBLIC_NET6 dev eth0 nodad"; done
		fi
		b+="
route add default dev eth0"
		ip -n "$(nsname "$name")" -batch - <<<"$b"
	done

	# Routers in table order, so a parent router's LAN link exists before its child router's turn.
	for r in "${ROUTERS[@]}"; do
		read -r name typ stem parent wan lan child <<<"$r"
		ns=$(nsname "$name")
		b="link set lo up
link add lan0 type veth peer name $(uplink "$child") netns $(nsname "$child")
link set wan0 up
link set lan0 up
addr add $lan.1/24 dev lan0"
		if [ "$parent" = inet ]; then
			b+="
addr add $wan/$PUBLIC_NET4 dev wan0
route add default dev wan0"
		else
			b+="
addr add $wan/24 dev wan0
route add default via ${wan%.*}.1"
		fi
		ip -n "$ns" -batch - <<<"$b"
		if ! is_router "$child"; then
			ip -n "$(nsname "$child")" -batch - <<EOF
link set lo up
link set eth0 up
addr add $lan.2/24 dev eth0
route add default via $lan.1
EOF
		fi
	done

	lab_env >"$STATE/env"
	trap - EXIT INT TERM
	cat "$STATE/env"
}

# True if pid $1 runs. A zombie does not count: what this script started in the background is reaped by
# init, which may take its time.
running() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
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
gone() {
	local p
	for p in "$@"; do ! running "$p" || return 1; done
}

lab_down() {
	local ns pids=() mine=()
	mapfile -t mine < <(lab_namespaces)
	for ns in "${mine[@]}"; do
		mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns")
	done
	if [ "${#pids[@]}" -gt 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		if ! poll 200 gone "${pids[@]}"; then
			kill -KILL "${pids[@]}" 2>/dev/null || true
			poll 200 gone "${pids[@]}" || echo "$prog: some processes would not die" >&2
		fi
	fi
	for ns in "${mine[@]}"; do
		ip netns del "$ns"
	done
	rm -rf -- "$STATE"
}

need_up() {
	[ -f "$STATE/env" ] || die "lab $LAB_PREFIX is not up"
}

# The conntrack entries in host $1's namespace.
conntrack_count() {
	ip netns exec "$(nsname "$1")" conntrack -C 2>/dev/null || echo '?'
}

# The IPv4 address (with prefix length) of interface $2 in host $1.
addr4() {
	ip -n "$(nsname "$1")" -4 -br addr show dev "$2" | awk '{print $3}'
}

lab_status() {
	local p r name v4 v6 typ stem parent wan lan child
	need_up
	printf 'lab %s (state %s)\n' "$LAB_PREFIX" "$STATE"
	printf '%-10s %-22s %-8s %s\n' HOST NAMESPACE ROLE ADDRESSES
	printf '%-10s %-22s %-8s %s\n' inet "$(nsname inet)" switch \
	    "bridge br0: $(ip -n "$(nsname inet)" -br link show master br0 | awk '{print $1}' | sed 's/@.*//' | tr '\n' ' ')"
	for p in "${PUBLIC[@]}"; do
		read -r name v4 v6 <<<"$p"
		printf '%-10s %-22s %-8s %s\n' "$name" "$(nsname "$name")" public \
		    "$(ip -n "$(nsname "$name")" -br addr show dev eth0 | awk '{$1=$2=""; print}' | sed 's/^ *//')"
	done
	echo
	printf '%-9s %-6s %-14s %-14s %-8s %-14s %s\n' ROUTER TYPE WAN LAN HOST HOST-ADDR CONNTRACK
	for r in "${ROUTERS[@]}"; do
		read -r name typ stem parent wan lan child <<<"$r"
		printf '%-9s %-6s %-14s %-14s %-8s %-14s %s\n' "$name" "$typ" "$(addr4 "$name" wan0)" \
		    "$(addr4 "$name" lan0)" "$child" "$(addr4 "$child" "$(uplink "$child")")" \
		    "$(conntrack_count "$name")"
	done
	echo
	if [ -f "$STATE/miniupnpd.pid" ] && running "$(cat "$STATE/miniupnpd.pid")"; then
		echo "miniupnpd: running (pid $(cat "$STATE/miniupnpd.pid")), leases $STATE/upnp.leases"
	else
		echo "miniupnpd: stopped (lab.sh miniupnpd start)"
	fi
}

# Namespace of host $1 has a UDP socket bound to $2 (ip:port).
udp_bound() {
	[ -n "$(ip netns exec "$(nsname "$1")" ss -Hlun "src $2")" ]
}

# Stop miniupnpd (TERM, it saves its leases) and coturn (KILL, nothing to save); then empty miniupnpd's
# chains and lease file, so the upnp router is a plain EIM router again.
upnp_stop() {
	local f pid sig host pids=()
	for f in miniupnpd coturn; do
		[ -f "$STATE/$f.pid" ] || continue
		pid=$(cat "$STATE/$f.pid")
		if [ $f = coturn ]; then sig=KILL host=stun; else sig=TERM host=upnp; fi
		# Only a pid that still lives in this lab's namespace.
		if [ -n "$pid" ] && grep -qx -- "$pid" <<<"$(ip netns pids "$(nsname $host)")"; then
			kill -$sig "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	if [ "${#pids[@]}" -gt 0 ] && ! poll 300 gone "${pids[@]}"; then
		kill -KILL "${pids[@]}" 2>/dev/null || true
		poll 100 gone "${pids[@]}" || die "miniupnpd or coturn would not die"
	fi
	rm -f "$STATE/miniupnpd.pid" "$STATE/miniupnpd.run.pid" "$STATE/coturn.pid"
	# miniupnpd deletes its lease file after reading it and writes it anew with each mapping.
	rm -f "$STATE/upnp.leases"
	if grep -qx -- "$(nsname upnp)" <<<"$(netns_names)"; then
		ip netns exec "$(nsname upnp)" nft -f - <<'NFT'
flush chain inet lab miniupnpd
flush chain inet lab prerouting_miniupnpd
flush chain inet lab postrouting_miniupnpd
NFT
	fi
}

upnp_start() {
	local port=$UPNP_STUN_PORT alt=$((UPNP_STUN_PORT + 1)) pid name typ stem parent wan lan child
	need_up
	router_get upnp
	if [ -f "$STATE/miniupnpd.pid" ] && running "$(cat "$STATE/miniupnpd.pid")"; then
		die "miniupnpd is already running"
	fi
	upnp_stop
	command -v miniupnpd >/dev/null || die "miniupnpd not found (apt-get install miniupnpd-nftables)"
	command -v turnserver >/dev/null || die "turnserver not found (apt-get install coturn)"
	ip netns exec "$(nsname stun)" turnserver -n -S --no-cli --no-tls --no-dtls \
	    --listening-ip "$STUN1" --listening-ip "$STUN2" --listening-port "$port" \
	    --alt-listening-port "$alt" --log-file stdout --simple-log --no-software-attribute \
	    --db "$STATE/turndb" \
	    </dev/null >"$STATE/coturn.log" 2>&1 3>&- &
	echo $! >"$STATE/coturn.pid"
	if ! { poll 500 udp_bound stun "$STUN1:$port" && poll 500 udp_bound stun "$STUN2:$alt"; }; then
		upnp_stop
		die "coturn did not start; see $STATE/coturn.log"
	fi

	cat >"$STATE/miniupnpd.conf" <<EOF
ext_ifname=wan0
listening_ip=lan0
http_port=$UPNP_HTTP_PORT
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=yes
lease_file=$STATE/upnp.leases
uuid=6d65736b-6b69-4c61-6275-706e70000001
ext_perform_stun=yes
ext_stun_host=$STUN1
ext_stun_port=$port
upnp_table_name=lab
upnp_nat_table_name=lab
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 $lan.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
	ip netns exec "$(nsname upnp)" miniupnpd -d -f "$STATE/miniupnpd.conf" -P "$STATE/miniupnpd.run.pid" \
	    </dev/null >"$STATE/miniupnpd.log" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$STATE/miniupnpd.pid"
	# It opens the NAT-PMP port only after its STUN check.
	if ! poll 1000 udp_bound upnp "$lan.1:5351" || ! running "$pid"; then
		upnp_stop
		die "miniupnpd did not start; see $STATE/miniupnpd.log"
	fi
	if ! grep -q 'Port forwarding is now enabled' "$STATE/miniupnpd.log"; then
		upnp_stop
		die "miniupnpd's STUN check failed (port forwarding off); see $STATE/miniupnpd.log"
	fi
}

[ $# -ge 1 ] || bad_usage
cmd=$1
shift
case $cmd in
up)	[ $# -eq 0 ] || bad_usage; lab_up ;;
down)	[ $# -eq 0 ] || bad_usage; lab_down ;;
status)	[ $# -eq 0 ] || bad_usage; lab_status ;;
env)	[ $# -eq 0 ] || bad_usage; need_up; cat "$STATE/env" ;;
ns)
	[ $# -eq 1 ] || bad_usage
	known_host "$1" || die "unknown host: $1 (one of:$HOSTS)"
	nsname "$1"
	;;
exec)
	[ $# -ge 2 ] || bad_usage
	known_host "$1" || die "unknown host: $1 (one of:$HOSTS)"
	ns=$(nsname "$1")
	shift
	exec ip netns exec "$ns" "$@"
	;;
miniupnpd)
	[ $# -eq 1 ] || bad_usage
	case $1 in
	start)	upnp_start ;;
	stop)	upnp_stop ;;
	*)	bad_usage ;;
	esac
	;;
-h|--help|help) usage ;;
*)	bad_usage ;;
esac
