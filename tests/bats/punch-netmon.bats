#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# punch --node learns its candidates again when the network changes (an
# address comes or goes, the default route moves), not only every 20-26 s:
# a node on h-eim1 with the lab relay as its STUN server. The re-STUN is
# counted by the router (an nft counter on eim1), never taken from punch.

load helpers
load wgsetup-helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mknm$$ IFP=nm$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	wg_path_setup
	wg_keys a b
	lab_relay_start
	export MESH=$BATS_FILE_TMPDIR/mesh.conf
	{
		echo "relay https://$RELAY_IP $PIN"
		echo "node alice $(cat "$KEYS/a.pub") 100.64.0.1"
		echo "node bob $(cat "$KEYS/b.pub") 100.64.0.2"
	} >"$MESH"
	# STUN requests from h-eim1's LAN to anywhere, counted on the router
	"$LAB" exec eim1 nft -f - <<-EOF2
	table inet nmtest {
		chain stun {
			type filter hook forward priority -10; policy accept;
			iifname "lan0" udp dport 3478 counter
		}
	}
	EOF2
}

teardown_file() {
	"$LAB" exec h-eim1 env PATH="$WGPATH" "$MK_BIN/wgsetup" down "${IFP}a" \
		2>/dev/null || true
	wg_cleanup "$IFP"
	rm -f /var/lib/meshkit/punch-"$IFP"a.port
	rmdir /var/lib/meshkit /run/meshkit 2>/dev/null || true
	lab_relay_stop
	"$LAB" down
}

teardown() {
	bg_stop_all
}

stun_sent() {
	"$LAB" exec eim1 nft list chain inet nmtest stun |
		sed -n 's/.*dport 3478 counter packets \([0-9]*\).*/\1/p'
}

@test "an address added and removed, and the default route moved: candidates and mapping learned again at once" {
	local log before port
	"$LAB" exec h-eim1 env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"${IFP}a" --mesh "$MESH" --key "$KEYS/a.key"
	bg_start alice "$LAB" exec h-eim1 "$MK_BIN/punch" -v --node "$MESH" \
		-k "$KEYS/a.key" --wg "${IFP}a"
	log=$BATS_TEST_TMPDIR/alice.log
	# the first STUN round: our mapping on eim1's WAN
	wait_for 10 "grep -q 'candidate $EIM1_WAN:[0-9]* (' '$log'"
	port=$(sed -n "s/.*candidate $EIM1_WAN:\([0-9]*\) (.*/\1/p" "$log" | head -n 1)
	# the periodic re-STUN comes 20-26 s after start: what follows in
	# the next seconds is the network monitor's doing
	wait_for 5 '[ "$(stun_sent)" -gt 0 ]'
	sleep 1
	before=$(stun_sent)
	"$LAB" exec h-eim1 ip addr add 10.1.0.9/24 dev eth0
	wait_for 5 "grep -q 'candidate 10.1.0.9:$port (local)' '$log'"
	grep -q 'network changed' "$log"
	wait_for 5 '[ "$(stun_sent)" -gt "$before" ]'

	"$LAB" exec h-eim1 ip addr del 10.1.0.9/24 dev eth0
	wait_for 5 "grep -q 'candidate 10.1.0.9:$port gone' '$log'"

	# the default route replaced (same gateway, new metric): a STUN
	# round again, and the mapping is still ours
	sleep 1
	before=$(stun_sent)
	"$LAB" exec h-eim1 ip route replace default via "$EIM1_LAN" metric 5
	wait_for 5 '[ "$(stun_sent)" -gt "$before" ]'
	run grep -c "network changed" "$log"
	[ "$output" -ge 2 ]
	! grep -q "candidate $EIM1_WAN:$port gone" "$log"
	kill -0 "$(bg_pid alice)"
}

@test "a change that is no path (an address on loopback) starts no STUN round" {
	local before log
	"$LAB" exec h-eim1 env PATH="$WGPATH" "$MK_BIN/wgsetup" up --userspace \
		"${IFP}a" --mesh "$MESH" --key "$KEYS/a.key"
	bg_start alice "$LAB" exec h-eim1 "$MK_BIN/punch" -v --node "$MESH" \
		-k "$KEYS/a.key" --wg "${IFP}a"
	log=$BATS_TEST_TMPDIR/alice.log
	wait_for 10 "grep -q 'candidate $EIM1_WAN:[0-9]* (' '$log'"
	sleep 2
	before=$(stun_sent)
	"$LAB" exec h-eim1 ip addr add 127.0.0.9/8 dev lo
	sleep 2
	"$LAB" exec h-eim1 ip addr del 127.0.0.9/8 dev lo
	[ "$(stun_sent)" = "$before" ]
	! grep -q 'network changed' "$log"
}
