#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# birthday in the NAT lab: h-edm1 behind an endpoint-dependent router (a
# random port per destination) is the hard side, h-eim1 behind an
# endpoint-independent one is the easy side; both routers filter by
# address and port (Linux conntrack), so plain hole punching cannot open
# this pair. They meet on a DERP relay (derpcat -l, TLS, pinned) on the
# fake internet and probe at an accelerated rate (1000 a second, 512
# ports, 4096 probes at most: 1 - (1 - 512/64512)^4096, a miss about once
# in 10^14). "Direct" is judged by the routers' conntrack, not by
# birthday's word.

load helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=mkb$$
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	export KEYS=$BATS_FILE_TMPDIR/keys
	mkdir -p "$KEYS"
	"$TOP/tests/tools/derpcat-keygen" "$KEYS" a b
	lab_relay_start
	# packet counters on the hard side's router, for the hand-off
	"$LAB" exec edm1 sysctl -qw net.netfilter.nf_conntrack_acct=1
}

teardown_file() {
	lab_relay_stop
	"$LAB" down
}

teardown() {
	bg_stop_all
}

pub() { cat "$KEYS/$1.pub"; }

FAST=(--ports 512 --count 4096 --rate 1000)

# bd NAME HOST VERB KEY PEER [-- CMD...]: birthday in a lab host, in the
# background; stdout in NAME.out, stderr in NAME.log.
bd() {
	local name=$1 host=$2 verb=$3 key=$4 peer=$5
	shift 5
	"$LAB" exec "$host" timeout 60 "$MK_BIN/birthday" "$verb" -v \
		-k "$KEYS/$key.key" --pin "$PIN" --relay "$RELAY" "${FAST[@]}" \
		"$(pub "$peer")" "$@" >"$BATS_TEST_TMPDIR/$name.out" \
		2>"$BATS_TEST_TMPDIR/$name.log" &
	echo $! >"$BATS_TEST_TMPDIR/$name.pid"
	echo "$! $name" >>"$BATS_TEST_TMPDIR/.pids"
}

# bd_rc NAME EXPECTED: wait for it; its exit status must be EXPECTED.
bd_rc() {
	local rc=0
	wait "$(cat "$BATS_TEST_TMPDIR/$1.pid")" || rc=$?
	[ "$rc" = "$2" ] || {
		echo "$1 exited $rc, not $2:" >&2
		cat "$BATS_TEST_TMPDIR/$1.log" >&2
		return 1
	}
}

# replied ROUTER A B: the router's conntrack holds a UDP flow between the
# public addresses A and B that has seen a reply: packets crossed it both
# ways.
replied() {
	local ct
	ct=$("$LAB" exec "$1" conntrack -L -p udp 2>&1)
	grep -F "=$2 " <<<"$ct" | grep -F "=$3 " | grep -vq UNREPLIED || {
		echo "no replied flow $2 <-> $3 on $1:" >&2
		echo "$ct" >&2
		return 1
	}
}

@test "EIM <-> EDM through the relay: a direct path between the routers' public addresses" {
	bd hard h-edm1 hard b a
	bd easy h-eim1 easy a b
	bd_rc easy 0
	bd_rc hard 0
	# LOCALPORT REMOTE_IP:PORT RTT_MS PROBES SECONDS
	run cat "$BATS_TEST_TMPDIR/easy.out"
	assert_output --regexp "^[0-9]+ $EDM1_WAN:[0-9]+ [0-9]+\.[0-9]{3} [0-9]+ [0-9]+\.[0-9]{3}$"
	run cat "$BATS_TEST_TMPDIR/hard.out"
	assert_output --regexp "^[0-9]+ $EIM1_WAN:[0-9]+ [0-9]+\.[0-9]{3} [0-9]+ [0-9]+\.[0-9]{3}$"
	# the easy side's port is its public one (EIM keeps it), which the
	# hard side names
	easy_port=$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/easy.out")
	assert_equal "$(cut -d' ' -f2 "$BATS_TEST_TMPDIR/hard.out")" "$EIM1_WAN:$easy_port"
	# the winning mapping of edm1 carried packets both ways
	mapped=$(cut -d' ' -f2 "$BATS_TEST_TMPDIR/easy.out" | cut -d: -f2)
	ct=$("$LAB" exec edm1 conntrack -L -p udp 2>&1)
	grep -E "dst=$EIM1_WAN sport=[0-9]+ dport=$easy_port .*src=$EIM1_WAN dst=$EDM1_WAN sport=$easy_port dport=$mapped " <<<"$ct" |
		grep -vq UNREPLIED
	replied eim1 "$EIM1_WAN" "$EDM1_WAN"
	# the count was respected
	[ "$(cut -d' ' -f4 "$BATS_TEST_TMPDIR/easy.out")" -le 4096 ]
}

@test "-- CMD: the winning socket goes to CMD, whose packets leave edm1 from the winning mapping" {
	bd hard h-edm1 hard b a -- /usr/bin/python3 -c '
import os, socket, time
s = socket.socket(fileno=3)
print(os.environ["MESHKIT_REMOTE"], s.getsockname()[1], flush=True)
for i in range(100):
    s.send(b"hand-off %d" % i)
    time.sleep(0.005)
'
	bd easy h-eim1 easy a b -- /usr/bin/python3 -c '
import os, socket
s = socket.socket(fileno=3)
s.settimeout(5)
got = 0
try:
    while got < 100:
        if s.recv(100).startswith(b"hand-off "):
            got += 1
except socket.timeout:
    pass
print(os.environ["MESHKIT_REMOTE"], s.getsockname()[1], got)
'
	bd_rc hard 0
	bd_rc easy 0
	read -r easy_remote easy_port got <"$BATS_TEST_TMPDIR/easy.out"
	read -r hard_remote hard_port <"$BATS_TEST_TMPDIR/hard.out"
	mapped=${easy_remote#"$EDM1_WAN":}
	assert_equal "$hard_remote" "$EIM1_WAN:$easy_port"
	[ "$easy_remote" = "$EDM1_WAN:$mapped" ]
	# most of CMD's datagrams arrived (UDP: a loss is not an error)
	[ "$got" -ge 90 ]
	# edm1's flow from the hard side's winning socket, translated to the
	# winning mapping, counted CMD's packets: more than the few pings
	# birthday itself sent from that socket
	line=$("$LAB" exec edm1 conntrack -L -p udp 2>/dev/null |
		grep -E "sport=$hard_port dport=$easy_port .*src=$EIM1_WAN dst=$EDM1_WAN sport=$easy_port dport=$mapped ")
	pkts=$(grep -o 'packets=[0-9]*' <<<"$line" | head -n 1 | cut -d= -f2)
	[ "$pkts" -ge 100 ] || { echo "$line" >&2; return 1; }
}

@test "the peer never appears on the relay: exit 3" {
	run -3 --separate-stderr "$LAB" exec h-eim1 timeout 60 "$MK_BIN/birthday" easy \
		-k "$KEYS/a.key" --pin "$PIN" --relay "$RELAY" -w 2 "$(pub b)"
	assert_equal "$output" ''
	[[ $stderr == *"peer never appeared on the relay"* ]]
}
