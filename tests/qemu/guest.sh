#!/bin/busybox sh
# SPDX-License-Identifier: MIT
#
# /init of tests/qemu/run.sh's guest: Debian's kernel with WireGuard.
#
#   n1: v1 192.168.241.1/24 --veth-- v2 192.168.241.2/24 :n2
#       wg1 10.0.0.1/24  <- kernel WireGuard ->  wg2 10.0.0.2/24
#   n3: 10,000 peers (wgsetup up, wg setconf beside wgsetup setconf)
#
# wgsetup runs with an empty PATH; ip and wg (iproute2, wireguard-tools)
# only judge. Busybox's shell prefers its own ip applet, so the real tools
# are called by full path. Prints "ok - NAME" / "not ok - NAME" lines.

/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /run/netns /var
ln -s /run /var/run
exec >/dev/console 2>&1

IP=/usr/local/bin/ip
WG=/usr/local/bin/wg
WGS="env PATH=/nonexistent /usr/local/bin/wgsetup"
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok - $1"
}

notok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok - $1"
}

# t NAME CMD...: one check
t() {
	name=$1
	shift
	if "$@"; then ok "$name"; else notok "$name"; fi
}

in1() { $IP netns exec n1 "$@"; }
in2() { $IP netns exec n2 "$@"; }
in3() { $IP netns exec n3 "$@"; }

now_cs() { cut -d ' ' -f 1 /proc/uptime | tr -d .; }

finish() {
	echo "# $n checks, $failed failed"
	echo "wgsetup-qemu: done"
	sync
	poweroff -f
}

for m in $(cat /modules/order); do
	insmod "/modules/$m" || echo "# insmod $m failed"
done
t "the kernel has WireGuard" test -d /sys/module/wireguard

$IP netns add n1
$IP netns add n2
$IP netns add n3
$IP link add v1 netns n1 type veth peer name v2 netns n2
in1 $IP addr add 192.168.241.1/24 dev v1
in2 $IP addr add 192.168.241.2/24 dev v2
for ns in n1 n2 n3; do $IP -n $ns link set lo up; done
in1 $IP link set v1 up
in2 $IP link set v2 up

umask 077
chmod 600 /big.conf	# a secret others could read draws a warning
$WGS genkey >/tmp/k1
$WGS genkey >/tmp/k2
$WGS pubkey </tmp/k1 >/tmp/p1
$WGS pubkey </tmp/k2 >/tmp/p2
t "wg pubkey agrees with wgsetup pubkey" \
	test "$($WG pubkey </tmp/k1)" = "$(cat /tmp/p1)"

conf() {
	cat <<EOF
[Interface]
PrivateKey = $(cat /tmp/k$1)
ListenPort = 51820
Address = 10.0.0.$1/24
MTU = 1420

[Peer]
PublicKey = $(cat /tmp/p$2)
Endpoint = 192.168.241.$2:51820
AllowedIPs = 10.0.0.$2/32, 10.9.$2.0/24
PersistentKeepalive = 1
EOF
}
conf 1 2 >/tmp/c1.conf
conf 2 1 >/tmp/c2.conf

t "up wg1 (kernel)" in1 $WGS up wg1 /tmp/c1.conf
t "up wg2 (kernel)" in2 $WGS up wg2 /tmp/c2.conf
t "the kernel backend was chosen" \
	sh -c "$IP netns exec n1 $WGS show --json wg1 | grep -q '\"backend\":\"kernel\"'"
t "the link is of kind wireguard" \
	sh -c "$IP -n n1 -d link show wg1 | grep -q 'wireguard'"
t "mtu 1420 and up" sh -c "$IP -n n1 link show wg1 | grep -q '<.*UP.*> mtu 1420'"
t "address 10.0.0.1/24" sh -c "$IP -n n1 addr show dev wg1 | grep -q 'inet 10.0.0.1/24'"
$IP -n n1 route show dev wg1 proto 109 | sort >/tmp/routes
printf '10.0.0.2 scope link \n10.9.2.0/24 scope link \n' >/tmp/routes.want
t "routes for the allowed IPs" cmp -s /tmp/routes /tmp/routes.want || sed 's/^/# /' /tmp/routes

i=0
until in1 ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 20 ] || break
done
t "n1 pings n2 through kernel WireGuard" in1 ping -c 1 -W 2 10.0.0.2
t "n2 pings n1" in2 ping -c 1 -W 2 10.0.0.1
t "a handshake happened" \
	sh -c "test \$($IP netns exec n1 $WG show wg1 latest-handshakes | cut -f 2) -gt 0"

# wgsetup's dump equals wg's, when wg's holds still around it (counters
# move with the keepalives).
dump_agrees() {
	ns=$1 ifc=$2 k=0
	while [ $k -lt 20 ]; do
		$IP netns exec "$ns" $WG show "$ifc" dump >/tmp/d1
		$IP netns exec "$ns" $WGS show --dump "$ifc" >/tmp/d2
		$IP netns exec "$ns" $WG show "$ifc" dump >/tmp/d3
		if cmp -s /tmp/d1 /tmp/d3; then
			cmp -s /tmp/d1 /tmp/d2 && return 0
			diff /tmp/d1 /tmp/d2 | head -5 | sed 's/^/# /'
			return 1
		fi
		k=$((k + 1))
	done
	return 1
}
t "show --dump equals wg show dump (live)" dump_agrees n1 wg1

# set, endpoints, a peer leaving, on the kernel
$WGS genkey | $WGS pubkey >/tmp/p3
t "set adds a peer" in1 $WGS set -t main wg1 peer "$(cat /tmp/p3)" endpoint 192.168.241.9:1 \
	allowed-ips 10.0.0.3/32 keepalive 7
t "wg sees it" sh -c "$IP netns exec n1 $WG show wg1 dump | grep -q \"^$(cat /tmp/p3)	(none)	192.168.241.9:1	10.0.0.3/32	0	0	[0-9]*	7\$\""
t "and its route" sh -c "$IP -n n1 route show dev wg1 proto 109 | grep -q '^10.0.0.3 '"
t "endpoints moves it" sh -c "echo '$(cat /tmp/p3) 192.168.241.10:2' | $IP netns exec n1 $WGS endpoints wg1"
t "wg sees the move" sh -c "$IP netns exec n1 $WG show wg1 endpoints | grep -q '192.168.241.10:2'"
t "set removes it" in1 $WGS set -t main wg1 peer "$(cat /tmp/p3)" remove
t "its route goes" sh -c "! $IP -n n1 route show dev wg1 proto 109 | grep -q '^10.0.0.3 '"
# without -t, as wg set: WireGuard only, on a down link too
t "set without -t" in1 $WGS set wg1 peer "$(cat /tmp/p3)" allowed-ips 10.0.3.0/24
t "wg sees that" sh -c "$IP netns exec n1 $WG show wg1 allowed-ips | grep -q '10.0.3.0/24'"
t "and no route" sh -c "! $IP -n n1 route show dev wg1 | grep -q '^10.0.3.0/24 '"
$IP -n n1 link set wg1 down
t "set without -t on a down link" in1 $WGS set wg1 peer "$(cat /tmp/p3)" allowed-ips 10.0.4.0/24
$IP -n n1 link set wg1 up
t "wg sees it too" sh -c "$IP netns exec n1 $WG show wg1 allowed-ips | grep -q '10.0.4.0/24'"
t "set -t on a down link is refused" sh -c "$IP -n n1 link set wg1 down;
	$IP netns exec n1 $WGS set -t main wg1 peer '$(cat /tmp/p3)' remove 2>/dev/null; rc=\$?;
	$IP -n n1 link set wg1 up; test \$rc = 3"
t "and changed nothing" sh -c "$IP netns exec n1 $WG show wg1 peers | grep -q '$(cat /tmp/p3)'"
t "set fwmark 0x1234" in1 $WGS set wg1 fwmark 0x1234
t "wg sees fwmark 0x1234" test "$(in1 $WG show wg1 fwmark)" = 0x1234
in1 $WGS set wg1 fwmark off peer "$(cat /tmp/p3)" remove
# an up killed half way, by hand: the link down at another MTU, no address
printf 'domain mesh.test\nnode n1 %s 100.64.0.1\nnode n2 %s 100.64.0.2\n' \
	"$(cat /tmp/p1)" "$(cat /tmp/p2)" >/tmp/mesh.conf
$IP -n n1 link set wg1 down mtu 1300
$IP -n n1 addr flush dev wg1
t "up --mesh on the half-made link" in1 $WGS up wg1 --mesh /tmp/mesh.conf --key /tmp/k1
t "brings the link up at 1280" sh -c "$IP -n n1 link show wg1 | grep -q '<.*UP.*> mtu 1280'"
t "with its mesh address and routes" sh -c "$IP -n n1 addr show dev wg1 | grep -q 'inet 100.64.0.1/32' &&
	$IP -n n1 route show dev wg1 proto 109 | grep -q '^100.64.0.2 '"
t "an unknown interface is exit 2" sh -c "$IP netns exec n1 $WGS show nosuch; test \$? = 2"

# 10,000 peers: several netlink messages, one of them for a single peer's
# 1,001 allowed IPs.
in3 $IP link add wgbig type wireguard
start=$(now_cs)
in3 $WGS -v setconf wgbig /big.conf 2>/tmp/setconf.err
rc=$?
end=$(now_cs)
cat /tmp/setconf.err | sed 's/^/# /'
t "setconf of 10,000 peers" test $rc = 0
msgs=$(sed -n 's/.* in \([0-9]*\) requests$/\1/p' /tmp/setconf.err)
t "in several netlink messages ($msgs)" test "${msgs:-0}" -gt 10
echo "# wgsetup setconf, 10,000 peers: $((end - start))0 ms"
in3 $WG show wgbig dump >/tmp/big.wg
t "wg sees 10,000 peers" test "$(wc -l </tmp/big.wg)" = 10001
t "the first peer's 1,001 allowed IPs are all there" \
	test "$(sed -n 2p /tmp/big.wg | cut -f 4 | tr ',' '\n' | wc -l)" = 1001
t "the peers are the file's" sh -c "grep '^PublicKey' /big.conf | cut -d ' ' -f 3 | sort >/tmp/keys.conf;
	tail -n +2 /tmp/big.wg | cut -f 1 | sort >/tmp/keys.wg; cmp -s /tmp/keys.conf /tmp/keys.wg"
in3 $WGS show --dump wgbig >/tmp/big.ours
t "show --dump equals wg show dump (10,000 peers)" cmp -s /tmp/big.wg /tmp/big.ours

# up with the same 10,000 peers: 11,000 routes. Neither big interface is
# deleted: the kernel removes each peer after an RCU grace period of its
# own (netif_napi_del), about two minutes for 10,000 under emulation, and
# `ip link del` is no faster. Deleting is checked on wg1 and wg2 below.
$IP -n n3 link set wgbig down
start=$(now_cs)
t "up with 10,000 peers" in3 $WGS up wgup /big.conf
end=$(now_cs)
echo "# wgsetup up, 10,000 peers and 11,000 routes: $((end - start))0 ms"
t "11,000 routes" test "$($IP -n n3 route show dev wgup proto 109 | wc -l)" = 11000

t "down wg1" in1 $WGS down wg1
t "wg1 is gone" sh -c "! $IP -n n1 link show wg1 2>/dev/null"
t "its routes and addresses too" sh -c "! $IP -n n1 route | grep -q 10.0.0; ! $IP -n n1 addr | grep -q 10.0.0"
t "down again is exit 2" sh -c "$IP netns exec n1 $WGS down wg1 2>/dev/null; test \$? = 2"
t "down wg2" in2 $WGS down wg2

if grep -q wgsetup.bench=1 /proc/cmdline; then
	# wg setconf beside wgsetup setconf, each on a fresh interface (never
	# deleted, see above), alternating so drift hits both alike
	$IP -n n3 link set wgup down
	for round in 1 2; do
		in3 $IP link add wga$round type wireguard
		start=$(now_cs)
		in3 $WG setconf wga$round /big.conf
		end=$(now_cs)
		echo "bench kernel_wg_setconf_cs $((end - start))"
		$IP -n n3 link set wga$round down
		in3 $IP link add wgb$round type wireguard
		start=$(now_cs)
		in3 $WGS setconf wgb$round /big.conf
		end=$(now_cs)
		echo "bench kernel_wgsetup_setconf_cs $((end - start))"
		$IP -n n3 link set wgb$round down
	done
fi
finish
