#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# meshkit's NAT lab: network namespaces joined by veth pairs, nftables NAT routers.
#
#   lab.sh up | down | status | env | ns HOST | exec HOST CMD... | miniupnpd start|stop
#   lab.sh delay ROUTER 4|6 MS | delay ROUTER off
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
#                                        h-eim1b (10.1.0.3) a second host, on the switch sw-eim1
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
#   nat64    198.18.1.11  fd64:64::1/64  h-v6only  NAT64 (tayga) for an IPv6-only LAN, then EIM masquerade
#   nsp64    198.18.1.64  fd64:6e::1/64  h-v6nsp   NAT64 by a network-specific prefix only, DNS64 (unbound)
#   ds1      198.18.1.21  10.21.0.1/24   h-ds1   dual stack: IPv4 as eim1; IPv6 routed, stateful firewall
#            2001:db8::d1 2001:db8:d1::1/64
#   ds2      198.18.1.22  10.22.0.1/24   h-ds2   the same
#            2001:db8::d2 2001:db8:d2::1/64
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
# nat64's LAN is IPv6 only: h-v6only has no IPv4 address (but loopback's) and no IPv4 route, only
# fd64:64::2/64 and a default route to fd64:64::1. A ULA, outside inet's 2001:db8::/64 (and the
# 2001:db8::/32 the design keeps for the fake internet): the LAN's addresses are on no route of the fake
# internet, as none of its IPv6 goes there (no NAT66, no IPv6 on any WAN). Its one way out is NAT64 to
# IPv4: RFC 6052's well-known prefix 64:ff9b::/96 (64:ff9b::198.18.0.10 is the stun host). tayga
# (in the router's namespace, on the TUN nat64) translates to IPv4 from a pool of its own,
# 192.168.255.0/24, seen nowhere outside the router, and that pool is masqueraded onto the WAN like
# eim1: EIM, address-and-port-dependent filtering, source port kept. tayga 0.9.2 refuses the well-known
# prefix for non-global IPv4 addresses (RFC 6052 section 3.1), and all of the fake internet is
# 198.18.0.0/15; so tayga translates a network-specific prefix of the router's own, fd64:64:0:ff9b::/96,
# and the router maps 64:ff9b::198.18.0.0/111 onto it address for address (an nft prefix DNAT in
# prerouting, undone on the replies): the LAN sees a well-known-prefix NAT64 for which the fake internet
# is the global internet. Other well-known-prefix addresses (64:ff9b::10.1.0.2) get ICMPv6 unreachable
# from the router, as a NAT64 refuses non-global IPv4 there. tayga's own prefix is not open to the LAN:
# with two prefixes, one socket sending to one IPv4 endpoint by both would get two mappings. `up` starts
# tayga in the foreground, tracked by its pid file in the state dir (tayga.pid, tayga.log, its config and
# data dir), and `down` stops it by that pid.
#
# nsp64 is the NAT64 a host must discover (RFC 7050): h-v6nsp (fd64:6e::2/64, IPv6 only as h-v6only)
# reaches IPv4 only through the network-specific prefix fd64:6e:0:64::/96, which tayga (a second
# instance, on the TUN nsp64, pool 192.168.254.0/24) translates and the WAN masquerades like eim1's.
# Only the fake internet's part of it is forwarded (fd64:6e:0:64::198.18.0.0/111); the well-known
# prefix 64:ff9b::/96 is not served there: the router rejects it (ICMPv6 no route), so a host that
# guesses the well-known prefix gets nowhere. The router also runs the LAN's resolver, unbound on
# [fd64:6e::1]:53 with module-config "dns64 iterator" and dns64-prefix the NSP, forwarding everything
# to a second unbound on its own 127.0.0.1:5353, the authority for ipv4only.arpa (A 192.0.0.170 and
# 192.0.0.171) and for the fake internet's names under lab. (stun.lab, stun2.lab, relay.lab,
# pub.lab: their A records; pub.lab also its AAAA). Answers synthesized by DNS64 are the NSP's
# (unbound's dns64 does not synthesize from its own local-data, hence the second instance). h-v6nsp's
# /etc/resolv.conf is /etc/netns/$LAB_PREFIX-h-v6nsp/resolv.conf (ip netns exec bind-mounts it),
# naming [fd64:6e::1]; `down` removes it. tayga and both unbounds are tracked by pid files in the
# state dir (nsp64-tayga.pid, nsp64-dns64.pid, nsp64-auth.pid, with their configs and logs).
#
# IPv6 is on only in inet's hosts that need it (stun, relay, pub), on nat64's and nsp64's LAN side
# (their lan0, their TUN, h-v6only, h-v6nsp) and in ds1, ds2 and their hosts; no NAT66.
#
# ds1 and ds2 are dual-stack home routers. IPv4: eim1's masquerade (EIM, address-and-port-dependent
# filtering, source port kept) onto the WAN address. IPv6: no NAT66; each LAN is a global /64 of the
# fake internet's 2001:db8::/32 outside inet's 2001:db8::/64 (2001:db8:d1::/64, 2001:db8:d2::/64; the
# router ::1, its host ::2, exported as DS1_LAN6, H_DS1_IP6), routed by the router, whose WAN has an
# IPv6 address on inet too (DS1_WAN6). inet's IPv6 hosts (stun, relay, pub) and the other ds router
# route each /64 via that WAN address. The forward chain is the same stateful firewall for both
# families: out from the LAN allowed, in only what conntrack calls established or related, policy
# drop (no ICMPv6 echo either: unsolicited inbound IPv6 vanishes, as IPv4 does). The input chain
# admits neighbour solicitations and advertisements from the WAN (inet must resolve the router as a
# next hop) and else drops as every router does. So two hosts behind ds1 and ds2 reach each other
# over IPv6 only by opening the path from both sides, as over IPv4; no IPv6 route leads to any other
# router's LAN.
#
# eim1's LAN is a switch: namespace sw-eim1 holds a bridge (br0, no firewall, no IP) with ports gw (to
# eim1's lan0), h-eim1 and h-eim1b (to the hosts' eth0). The two hosts reach each other on the LAN
# without the router: eim1's conntrack sees none of it. hair keeps one host (its hairpin emulation
# relies on that); the extra hosts are the table LAN_EXTRA.
#
# `lab.sh delay ROUTER 4|6 MS` is a userspace delay element: every packet the router forwards of that
# family, both ways, waits MS ms (a round trip through the router grows by 2*MS), and nothing else
# changes (addresses, ports, conntrack: a punched path stays valid). This kernel has no nft queue
# expression, so an iptables-nft rule (mangle FORWARD, xtables' NFQUEUE target, queue 4 or 6,
# --queue-bypass) hands the packets to tests/tools/nfqdelay.py in the router's namespace, which lets
# each go after MS ms. `lab.sh delay ROUTER off` removes the rules and stops it (by its pid file,
# delay-ROUTER-FAMILY.pid in the state dir; `down` ends it with the namespace). Needs iptables.
#
# `up` does not start miniupnpd: its ext_perform_stun check needs a STUN server that honours
# CHANGE-REQUEST. `lab.sh miniupnpd start` starts its own coturn on the stun host, on STUN_IP1/STUN_IP2
# ports 3490 and 3491 (so 3478/3479 stay free for tests' servers), then miniupnpd on the upnp router;
# `lab.sh miniupnpd stop` stops both. State (pid files, configs, logs, lease file, tayga's config and
# data dir, the delay elements' pid files and logs) lives in /run/meshkit-lab/$LAB_PREFIX/.
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
       lab.sh delay ROUTER 4|6 MS | off   hold the router's forwarded IPv4 or IPv6 MS ms
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
# Routers: name, type, variable stem (of the exported names), parent namespace, WAN address, LAN (a /24
# without .0, or an IPv6 /64 as its prefix ending in ::), the one host behind it. A router behind another
# router has that one's LAN .2 as its WAN.
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
	"nat64    nat64 NAT64  inet  198.18.1.11 fd64:64:: h-v6only"
	"nsp64    nsp64 NSP64  inet  198.18.1.64 fd64:6e:: h-v6nsp"
	"ds1      ds    DS1    inet  198.18.1.21 10.21.0  h-ds1"
	"ds2      ds    DS2    inet  198.18.1.22 10.22.0  h-ds2"
)
# The dual-stack routers' IPv6 (see the head of this script): router, its WAN address on inet, its LAN
# /64 as a prefix ending in ::. The router is ::1 on it, its host ::2.
ROUTERS6=(
	"ds1 2001:db8::d1 2001:db8:d1::"
	"ds2 2001:db8::d2 2001:db8:d2::"
)
# More hosts on a router's LAN, behind a switch of their own (namespace sw-ROUTER): host, router, its
# number on the router's /24.
LAN_EXTRA=(
	"h-eim1b eim1 3"
)
PUBLIC_NET4=15
PUBLIC_NET6=64
# nat64 (see the head of this script): the prefix its LAN uses, the one tayga translates, tayga's IPv4
# pool and its own addresses (the sources of the ICMP errors it makes).
NAT64_PREFIX=64:ff9b::/96
NAT64_NSP=fd64:64:0:ff9b::/96
# The fake internet's 198.18.0.0/15 in the well-known prefix.
NAT64_INET=64:ff9b::c612:0/111
NAT64_POOL=192.168.255.0/24
TAYGA4=192.168.255.1 TAYGA6=fd64:64:0:1::1
# nsp64 (see the head of this script): its network-specific prefix, the fake internet in it, tayga's
# pool and addresses there, and the port of the local DNS authority behind its DNS64.
NSP64_NSP=fd64:6e:0:64::/96
NSP64_INET=fd64:6e:0:64::c612:0/111
NSP64_POOL=192.168.254.0/24
NSP64_TAYGA4=192.168.254.1 NSP64_TAYGA6=fd64:6e:0:1::1
NSP64_AUTH_PORT=5353

nsname() { printf '%s-%s\n' "$LAB_PREFIX" "$1"; }

# Host names, derived once from the tables: every namespace, the routers, the hosts behind routers.
HOSTS=inet ROUTER_NAMES='' LAN_HOSTS='' SWITCHED=''
for _p in "${PUBLIC[@]}"; do HOSTS+=" ${_p%% *}"; done
for _p in "${ROUTERS[@]}"; do ROUTER_NAMES+=" ${_p%% *}"; done
for _p in "${ROUTERS[@]}"; do
	[[ " $ROUTER_NAMES " == *" ${_p##* } "* ]] || LAN_HOSTS+=" ${_p##* }"
done
# Routers whose LAN is a switch (once each), and the extra hosts on it.
for _p in "${LAN_EXTRA[@]}"; do
	read -r _h _r _ <<<"$_p"
	LAN_HOSTS+=" $_h"
	[[ " $SWITCHED " == *" $_r "* ]] || SWITCHED+=" $_r"
done
HOSTS+="$ROUTER_NAMES$LAN_HOSTS"
for _r in $SWITCHED; do HOSTS+=" sw-$_r"; done
unset _p _h _r

is_router() { [[ " $ROUTER_NAMES " == *" $1 "* ]]; }
# Router $1's LAN is a switch (it has extra hosts).
is_switched() { [[ " $SWITCHED " == *" $1 "* ]]; }
# Set wan6 and lan6 (declare them local first) from router $1's IPv6 line; false if it has none.
router6_get() {
	local r n
	for r in "${ROUTERS6[@]}"; do
		read -r n wan6 lan6 <<<"$r"
		[ "$n" = "$1" ] && return 0
	done
	return 1
}
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
# Set REPLY to the address of host number $2 on LAN $1 (a router's LAN field), PLEN to its prefix length.
lan_addr() {
	case $1 in
	*::)	REPLY=$1$2 PLEN=64 ;;
	*)	REPLY=$1.$2 PLEN=24 ;;
	esac
}

lab_env() {
	local p r name v4 v6 typ stem parent wan lan child hv wan6 lan6 n xh
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
		lan_addr "$lan" 1
		echo "export ${stem}_WAN=$wan ${stem}_LAN=$REPLY"
		if ! is_router "$child"; then
			hv=${child^^}
			lan_addr "$lan" 2
			if [ "$PLEN" = 64 ]; then
				echo "export ${hv//-/_}_IP6=$REPLY"
			else
				echo "export ${hv//-/_}_IP=$REPLY"
			fi
		fi
		if router6_get "$name"; then
			echo "export ${stem}_WAN6=$wan6 ${stem}_LAN6=${lan6}1 ${hv//-/_}_IP6=${lan6}2"
		fi
	done
	for r in "${LAN_EXTRA[@]}"; do
		read -r xh name n <<<"$r"
		router_get "$name"
		hv=${xh^^}
		echo "export ${hv//-/_}_IP=$lan.$n"
	done
	router_get upnp
	echo "export UPNP_LAN_GW=$lan.1 UPNP_URL=http://$lan.1:$UPNP_HTTP_PORT/rootDesc.xml"
	echo "export UPNP_LEASE_FILE=$STATE/upnp.leases"
	echo "export NAT64_PREFIX=$NAT64_PREFIX NAT64_POOL=$NAT64_POOL"
	echo "export NSP64_PREFIX=$NSP64_NSP NSP64_POOL=$NSP64_POOL"
}

# The nftables ruleset of one router; $1 type, $2 LAN host address, $3 WAN address.
router_nft() {
	local typ=$1 host=$2 wan=$3 fwd_pre='' fwd_in='' fwd_out='iifname "lan0" oifname "wan0" accept'
	local pre='' post='' in_extra='' sets='' masq=masquerade
	case $typ in
	eim|upnp) ;;
	edm)	masq="masquerade fully-random" ;;
	ds)
		# IPv4 as eim1; IPv6 routed, not translated, through the same stateful forward chain
		# (out from the LAN, in only what conntrack calls established or related). Neighbour
		# discovery on the WAN must reach the router, or inet cannot find it as a next hop.
		masq="meta nfproto ipv4 masquerade"
		in_extra='iifname "wan0" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'
		;;
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
	nat64)
		# The fake internet's part of the well-known prefix becomes tayga's own prefix (see the head
		# of this script); the LAN reaches tayga only that way, and tayga's IPv4 (from its pool) goes
		# only out of the WAN. The TUN is LAN side: a packet to the WAN address reaches the router
		# itself, as from eim1's LAN.
		fwd_out="iifname \"lan0\" oifname \"nat64\" ip6 daddr $NAT64_NSP ct status dnat accept
		iifname \"nat64\" oifname \"wan0\" ip saddr $NAT64_POOL accept"
		pre="iifname \"lan0\" ip6 daddr $NAT64_INET dnat ip6 prefix to $NAT64_NSP"
		in_extra='iifname "nat64" accept'
		;;
	nsp64)
		# Only the network-specific prefix, only its fake-internet part, to tayga; tayga's IPv4
		# only out of the WAN. The well-known prefix is refused at once (see the head).
		fwd_out="iifname \"lan0\" oifname \"nsp64\" ip6 daddr $NSP64_INET accept
		iifname \"lan0\" ip6 daddr $NAT64_PREFIX reject with icmpv6 type no-route
		iifname \"nsp64\" oifname \"wan0\" ip saddr $NSP64_POOL accept"
		in_extra='iifname "nsp64" accept'
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

# Sysctls of a new namespace, as shell commands; $1 role: v6 (a host with IPv6), router, or anything
# else (the switches, hosts); $2 a router's type. Set before any link exists, so new interfaces
# inherit "default".
ns_sysctls() {
	local s=/proc/sys/net
	if [ "$1" = v6 ] || [ "${2:-}" = ds ]; then
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
		# nat64 routes IPv6 between its LAN and tayga's TUN; IPv6 is switched on for those two once
		# they exist (nat64_finish), so wan0 stays IPv4 only.
		[ "${2:-}" != nat64 ] ||
		    echo "echo 1 >$s/ipv6/conf/all/forwarding; echo 0 >$s/ipv6/conf/default/accept_dad"
		# nsp64 likewise (nsp64_finish)
		[ "${2:-}" != nsp64 ] ||
		    echo "echo 1 >$s/ipv6/conf/all/forwarding; echo 0 >$s/ipv6/conf/default/accept_dad"
		# The dual-stack routers route IPv6 on both sides.
		[ "${2:-}" != ds ] || echo "echo 1 >$s/ipv6/conf/all/forwarding"
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
	local p r name v4 v6 typ stem parent wan lan child a role inet_ns ns b wan6 lan6 xh n sw
	[ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces)"
	command -v nft >/dev/null || die "nft not found (apt-get install nftables)"
	command -v tayga >/dev/null || die "tayga not found (apt-get install tayga)"
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
		lan_addr "$lan" 2
		router_nft "$typ" "$REPLY" "$wan" |
		    ip netns exec "$ns" sh -ec "$(ns_sysctls router "$typ"); exec nft -f -"
		# tayga makes its TUN itself; it starts now and is waited for at the end.
		[ "$typ" != nat64 ] || tayga_start "$ns"
		[ "$typ" != nsp64 ] || nsp64_tayga_start "$ns"
		if ! is_router "$child"; then
			role=host
			[ "$typ" != nat64 ] && [ "$typ" != nsp64 ] && [ "$typ" != ds ] || role=v6
			ip netns add "$(nsname "$child")"
			ip netns exec "$(nsname "$child")" sh -ec "$(ns_sysctls $role)"
		fi
	done
	for sw in $SWITCHED; do
		ip netns add "$(nsname "sw-$sw")"
		ip netns exec "$(nsname "sw-$sw")" sh -ec "$(ns_sysctls switch)"
	done
	for r in "${LAN_EXTRA[@]}"; do
		read -r xh _ _ <<<"$r"
		ip netns add "$(nsname "$xh")"
		ip netns exec "$(nsname "$xh")" sh -ec "$(ns_sysctls host)"
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
			b+="$(routes6_to_lans '')"
		fi
		b+="
route add default dev eth0"
		ip -n "$(nsname "$name")" -batch - <<<"$b"
	done

	# Routers in table order, so a parent router's LAN link exists before its child router's turn.
	for r in "${ROUTERS[@]}"; do
		read -r name typ stem parent wan lan child <<<"$r"
		ns=$(nsname "$name")
		if is_switched "$name"; then
			b="link add lan0 type veth peer name gw netns $(nsname "sw-$name")"
		else
			b="link add lan0 type veth peer name $(uplink "$child") netns $(nsname "$child")"
		fi
		b+="
link set lo up
link set wan0 up
link set lan0 up"
		# nat64's LAN address waits until lan0 has IPv6 (nat64_finish).
		[ "$typ" = nat64 ] || [ "$typ" = nsp64 ] || b+="
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
		if router6_get "$name"; then
			b+="
addr add $wan6/$PUBLIC_NET6 dev wan0 nodad
addr add ${lan6}1/64 dev lan0 nodad$(routes6_to_lans "$name")"
		fi
		ip -n "$ns" -batch - <<<"$b"
		! is_switched "$name" || switch_up "$name"
		if ! is_router "$child"; then
			lan_addr "$lan" 2
			a="$REPLY/$PLEN dev eth0"
			[ "$PLEN" = 24 ] || a+=" nodad"
			lan_addr "$lan" 1
			b="link set lo up
link set eth0 up
addr add $a
route add default via $REPLY"
			! router6_get "$name" || b+="
addr add ${lan6}2/64 dev eth0 nodad
route add ::/0 via ${lan6}1"
			ip -n "$(nsname "$child")" -batch - <<<"$b"
		fi
	done
	for r in "${LAN_EXTRA[@]}"; do
		read -r xh name n <<<"$r"
		router_get "$name"
		ip -n "$(nsname "$xh")" -batch - <<EOF
link set lo up
link set eth0 up
addr add $lan.$n/24 dev eth0
route add default via $lan.1
EOF
	done
	nat64_finish
	nsp64_finish

	lab_env >"$STATE/env"
	trap - EXIT INT TERM
	cat "$STATE/env"
}

# ip -batch lines (each after a newline): routes to the dual-stack routers' LAN /64s through their WAN
# addresses on inet, but to router $1's own.
routes6_to_lans() {
	local r n w l
	for r in "${ROUTERS6[@]}"; do
		read -r n w l <<<"$r"
		[ "$n" = "$1" ] || printf '\nroute add %s/64 via %s' "$l" "$w"
	done
}

# The switch of router $1's LAN (namespace sw-$1, bridge br0, no firewall): its port gw to the router's
# lan0 (made by the router), and one port per host on it, named after the host, to the host's eth0.
switch_up() {
	local sw r xh rn n b
	local name typ stem parent wan lan child
	router_get "$1"
	sw=$(nsname "sw-$1")
	b="link set lo up
link add br0 type bridge mcast_snooping 0
link set br0 up
link set gw master br0 up
link add $child type veth peer name eth0 netns $(nsname "$child")
link set $child master br0 up"
	for r in "${LAN_EXTRA[@]}"; do
		read -r xh rn n <<<"$r"
		[ "$rn" = "$1" ] || continue
		b+="
link add $xh type veth peer name eth0 netns $(nsname "$xh")
link set $xh master br0 up"
	done
	ip -n "$sw" -batch - <<<"$b"
}

# Write tayga's config and start it in the foreground in namespace $1, in the background of this script.
tayga_start() {
	mkdir -p "$STATE/tayga"
	cat >"$STATE/tayga.conf" <<EOF
tun-device nat64
ipv4-addr $TAYGA4
ipv6-addr $TAYGA6
prefix $NAT64_NSP
dynamic-pool $NAT64_POOL
data-dir $STATE/tayga
EOF
	# -d logs to stdout (not syslog), which stdbuf keeps line-buffered: the log shows the pool address
	# tayga gives each IPv6 host.
	ip netns exec "$1" stdbuf -oL tayga -c "$STATE/tayga.conf" --nodetach -d \
	    </dev/null >"$STATE/tayga.log" 2>&1 3>&- &
	echo $! >"$STATE/tayga.pid"
}

# Once tayga's TUN is there: IPv6 on it and on lan0, the LAN address, the TUN up, and the routes to
# tayga (its pool, its prefix, its own IPv6 address).
nat64_finish() {
	local name typ stem parent wan lan child ns pid n=1000 s=/proc/sys/net/ipv6/conf
	router_get nat64
	ns=$(nsname "$name")
	pid=$(cat "$STATE/tayga.pid")
	until ip -n "$ns" link show dev nat64 >/dev/null 2>&1; do
		if ! running "$pid"; then
			cat "$STATE/tayga.log" >&2
			die "tayga did not start: it exited"
		fi
		[ "$n" -gt 0 ] || die "tayga did not start: no TUN after 1000 looks"
		n=$((n - 1))
		sleep 0.01
	done
	lan_addr "$lan" 1
	ip netns exec "$ns" sh -ec "echo 0 >$s/lan0/disable_ipv6; echo 0 >$s/nat64/disable_ipv6
exec ip -batch -" <<EOF
addr add $REPLY/$PLEN dev lan0 nodad
link set nat64 up
route add $NAT64_POOL dev nat64
route add $NAT64_NSP dev nat64
route add $TAYGA6 dev nat64
EOF
}

# Stop tayga by its pid: only a pid that lives in this lab's nat64 namespace, or that this very script
# started (an `up` that fails may not have let it enter the namespace yet).
tayga_stop() {
	local pid st
	[ -f "$STATE/tayga.pid" ] || return 0
	pid=$(cat "$STATE/tayga.pid")
	st=$(cat "/proc/$pid/stat" 2>/dev/null) || st=
	st=${st##*) }
	read -r _ st _ <<<"$st"
	if [[ $pid =~ ^[0-9]+$ ]] && { [ "$st" = $$ ] ||
	    grep -qx -- "$pid" <<<"$(ip netns pids "$(nsname nat64)" 2>/dev/null)"; }; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! poll 300 gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			poll 100 gone "$pid" || echo "$prog: tayga (pid $pid) would not die" >&2
		fi
	fi
	rm -f "$STATE/tayga.pid"
}

# nsp64's tayga: its config and the foreground process in namespace $1, as tayga_start.
nsp64_tayga_start() {
	mkdir -p "$STATE/nsp64-tayga"
	cat >"$STATE/nsp64-tayga.conf" <<EOF
tun-device nsp64
ipv4-addr $NSP64_TAYGA4
ipv6-addr $NSP64_TAYGA6
prefix $NSP64_NSP
dynamic-pool $NSP64_POOL
data-dir $STATE/nsp64-tayga
EOF
	ip netns exec "$1" stdbuf -oL tayga -c "$STATE/nsp64-tayga.conf" --nodetach -d \
	    </dev/null >"$STATE/nsp64-tayga.log" 2>&1 3>&- &
	echo $! >"$STATE/nsp64-tayga.pid"
}

# unbound in namespace $1 with config $2, in the foreground of a background job: $STATE/$3.pid, .log.
nsp64_unbound() {
	ip netns exec "$1" unbound -d -c "$2" </dev/null >"$STATE/$3.log" 2>&1 3>&- &
	echo $! >"$STATE/$3.pid"
}

# The server: lines both unbounds share: no chroot, no user change, no daemon, logs to stderr.
nsp64_unbound_common() {
	cat <<EOF
	username: ""
	chroot: ""
	directory: "$STATE"
	use-syslog: no
	logfile: ""
	num-threads: 1
	so-reuseport: no
	do-daemonize: no
	verbosity: 1
EOF
}

# Once nsp64's TUN is there: IPv6 on lan0 and the TUN, the routes to tayga; then the DNS: the
# authority on 127.0.0.1, the DNS64 resolver on the LAN address, and h-v6nsp's resolv.conf naming it.
nsp64_finish() {
	local name typ stem parent wan lan child ns pid n=1000 s=/proc/sys/net/ipv6/conf lanip p v4 v6
	local d a
	command -v unbound >/dev/null || die "unbound not found (apt-get install unbound)"
	router_get nsp64
	ns=$(nsname "$name")
	pid=$(cat "$STATE/nsp64-tayga.pid")
	until ip -n "$ns" link show dev nsp64 >/dev/null 2>&1; do
		if ! running "$pid"; then
			cat "$STATE/nsp64-tayga.log" >&2
			die "nsp64's tayga did not start: it exited"
		fi
		[ "$n" -gt 0 ] || die "nsp64's tayga did not start: no TUN after 1000 looks"
		n=$((n - 1))
		sleep 0.01
	done
	lan_addr "$lan" 1
	lanip=$REPLY
	ip netns exec "$ns" sh -ec "echo 0 >$s/lan0/disable_ipv6; echo 0 >$s/nsp64/disable_ipv6
exec ip -batch -" <<EOF
addr add $lanip/$PLEN dev lan0 nodad
link set nsp64 up
route add $NSP64_POOL dev nsp64
route add $NSP64_NSP dev nsp64
route add $NSP64_TAYGA6 dev nsp64
EOF
	{
		echo "server:"
		nsp64_unbound_common
		cat <<EOF
	pidfile: "$STATE/nsp64-auth.run.pid"
	interface: 127.0.0.1@$NSP64_AUTH_PORT
	port: $NSP64_AUTH_PORT
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	local-zone: "." static
	local-data: "ipv4only.arpa. 3600 IN A 192.0.0.170"
	local-data: "ipv4only.arpa. 3600 IN A 192.0.0.171"
EOF
		for p in "${PUBLIC[@]}"; do
			read -r name v4 v6 <<<"$p"
			for a in ${v4//,/ }; do
				echo "	local-data: \"$name.lab. 60 IN A $a\""
			done
			[ "$name" != pub ] || echo "	local-data: \"$name.lab. 60 IN AAAA ${v6%%,*}\""
		done
	} >"$STATE/nsp64-auth.conf"
	{
		echo "server:"
		nsp64_unbound_common
		cat <<EOF
	pidfile: "$STATE/nsp64-dns64.run.pid"
	interface: $lanip
	port: 53
	access-control: $lan/64 allow
	module-config: "dns64 iterator"
	dns64-prefix: $NSP64_NSP
	do-not-query-localhost: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@$NSP64_AUTH_PORT
EOF
	} >"$STATE/nsp64-dns64.conf"
	nsp64_unbound "$ns" "$STATE/nsp64-auth.conf" nsp64-auth
	nsp64_unbound "$ns" "$STATE/nsp64-dns64.conf" nsp64-dns64
	if ! { poll 500 udp_bound nsp64 "127.0.0.1:$NSP64_AUTH_PORT" &&
	    poll 500 udp_bound nsp64 "[$lanip]:53"; }; then
		cat "$STATE/nsp64-auth.log" "$STATE/nsp64-dns64.log" >&2
		die "nsp64's unbound did not start"
	fi
	d=/etc/netns/$(nsname "$child")
	mkdir -p "$d"
	printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$lanip" >"$d/resolv.conf"
}

# Stop what nsp64_tayga_start and nsp64_unbound started, by their pid files (only a pid in nsp64's
# namespace, or a child of this script, as tayga_stop), and remove h-v6nsp's resolv.conf.
nsp64_stop() {
	local f pid st pids=()
	for f in nsp64-dns64 nsp64-auth nsp64-tayga; do
		[ -f "$STATE/$f.pid" ] || continue
		pid=$(cat "$STATE/$f.pid")
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || st=
		st=${st##*) }
		read -r _ st _ <<<"$st"
		if [[ $pid =~ ^[0-9]+$ ]] && { [ "$st" = $$ ] ||
		    grep -qx -- "$pid" <<<"$(ip netns pids "$(nsname nsp64)" 2>/dev/null)"; }; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
		rm -f "$STATE/$f.pid"
	done
	if [ "${#pids[@]}" -gt 0 ] && ! poll 300 gone "${pids[@]}"; then
		kill -KILL "${pids[@]}" 2>/dev/null || true
		poll 100 gone "${pids[@]}" || echo "$prog: nsp64's tayga or unbound would not die" >&2
	fi
	rm -rf -- "/etc/netns/$(nsname h-v6nsp)"
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
	tayga_stop
	nsp64_stop
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

# The first address (with prefix length) of interface $2 in host $1 that is not link-local: the IPv4
# address, or on nat64's LAN the IPv6 one.
if_addr() {
	ip -n "$(nsname "$1")" -br addr show dev "$2" |
	    awk '{ for (i = 3; i <= NF; i++) if ($i !~ /^fe80:/) { print $i; exit } }'
}

lab_status() {
	local p r name v4 v6 typ stem parent wan lan child wan6 lan6 n
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
		printf '%-9s %-6s %-14s %-14s %-8s %-14s %s\n' "$name" "$typ" \
		    "$(if_addr "$name" wan0)" "$(if_addr "$name" lan0)" "$child" \
		    "$(if_addr "$child" "$(uplink "$child")")" "$(conntrack_count "$name")"
	done
	for r in "${ROUTERS6[@]}"; do
		read -r name wan6 lan6 <<<"$r"
		printf '%-9s IPv6   WAN %s, LAN %s1/64, host %s2 (no NAT66; stateful firewall)\n' \
		    "$name" "$wan6" "$lan6" "$lan6"
	done
	for r in "${LAN_EXTRA[@]}"; do
		read -r child name n <<<"$r"
		printf '%-9s also   %s %s on the switch sw-%s\n' "$name" "$child" \
		    "$(if_addr "$child" eth0)" "$name"
	done
	for r in "$STATE"/delay-*.pid; do
		[ -f "$r" ] || continue
		r=${r##*/delay-}
		r=${r%.pid}
		echo "delay element: ${r%-*} IPv${r##*-} (pid $(cat "$STATE/delay-$r.pid"))"
	done
	echo
	if [ -f "$STATE/miniupnpd.pid" ] && running "$(cat "$STATE/miniupnpd.pid")"; then
		echo "miniupnpd: running (pid $(cat "$STATE/miniupnpd.pid")), leases $STATE/upnp.leases"
	else
		echo "miniupnpd: stopped (lab.sh miniupnpd start)"
	fi
	if [ -f "$STATE/tayga.pid" ] && running "$(cat "$STATE/tayga.pid")"; then
		echo "tayga: running (pid $(cat "$STATE/tayga.pid")) on nat64: $NAT64_INET as $NAT64_NSP," \
		    "pool $NAT64_POOL"
	else
		echo "tayga: stopped (see $STATE/tayga.log)"
	fi
	if [ -f "$STATE/nsp64-dns64.pid" ] && running "$(cat "$STATE/nsp64-dns64.pid")"; then
		echo "nsp64: DNS64 (unbound, pid $(cat "$STATE/nsp64-dns64.pid")) and NAT64 by $NSP64_NSP," \
		    "pool $NSP64_POOL"
	else
		echo "nsp64: DNS64 stopped (see $STATE/nsp64-dns64.log)"
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

# The delay element of router $1 for family $2 (4 or 6): the tool's pid file and its queue number.
delay_pidfile() { echo "$STATE/delay-$1-$2.pid"; }
DELAY_TOOL=$(cd "$(dirname "$0")/../tools" && pwd)/nfqdelay.py

# iptables or ip6tables in router $1 for family $2; its mangle FORWARD rule that queues to the tool.
# (This kernel has no nft queue expression; xtables' NFQUEUE target comes through iptables-nft.)
delay_rule() {
	local cmd=iptables
	[ "$2" = 4 ] || cmd=ip6tables
	ip netns exec "$(nsname "$1")" "$cmd" -t mangle "$3" FORWARD -j NFQUEUE --queue-num "$2" \
	    --queue-bypass
}

delay_on() {
	local r=$1 fam=$2 ms=$3 pidf pid ready
	need_up
	is_router "$r" || die "not a router: $r"
	[[ $fam =~ ^[46]$ ]] || die "family is 4 or 6, not $fam"
	[[ $ms =~ ^[0-9]+$ ]] || die "delay is whole milliseconds, not $ms"
	command -v iptables >/dev/null || die "iptables not found (apt-get install iptables)"
	pidf=$(delay_pidfile "$r" "$fam")
	[ ! -f "$pidf" ] || die "$r already delays IPv$fam (lab.sh delay $r off)"
	ready=$STATE/delay-$r-$fam.ready
	rm -f "$ready"
	ip netns exec "$(nsname "$r")" python3 "$DELAY_TOOL" --queue "$fam" --delay "$ms" \
	    --ready "$ready" </dev/null >"$STATE/delay-$r-$fam.log" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$pidf"
	# Python takes a while to start on a busy machine.
	if ! poll 2000 test -s "$ready" || ! running "$pid"; then
		cat "$STATE/delay-$r-$fam.log" >&2
		delay_off "$r"
		die "the delay element did not start"
	fi
	delay_rule "$r" "$fam" -A || { delay_off "$r"; die "cannot add the NFQUEUE rule in $r"; }
}

# Remove router $1's delay rules and stop its delay elements (by their pids, in its namespace).
delay_off() {
	local fam pidf pid
	need_up
	is_router "$1" || die "not a router: $1"
	for fam in 4 6; do
		pidf=$(delay_pidfile "$1" "$fam")
		[ -f "$pidf" ] || continue
		while delay_rule "$1" "$fam" -D 2>/dev/null; do :; done
		pid=$(cat "$pidf")
		if [[ $pid =~ ^[0-9]+$ ]] && grep -qx -- "$pid" <<<"$(ip netns pids "$(nsname "$1")")"; then
			kill -TERM "$pid" 2>/dev/null || true
			poll 300 gone "$pid" || { kill -KILL "$pid" 2>/dev/null || true; }
		fi
		rm -f "$pidf" "$STATE/delay-$1-$fam.ready"
	done
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
delay)
	case $# in
	2)	[ "$2" = off ] || bad_usage; delay_off "$1" ;;
	3)	delay_on "$@" ;;
	*)	bad_usage ;;
	esac
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
