#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# wgsetup on wireguard-go in a network namespace of its own (no packets
# leave it): keys against wg(8), interfaces checked with `wg show` and
# `ip -j`, peers, endpoints from stdin, mesh.conf edits, clean failure.
# wgsetup runs with a PATH that holds wireguard-go and nothing else, so it
# cannot lean on ip or wg.

load helpers
load wgsetup-helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "wgsetup tests need root" >&2; return 1; }
	export IFP=ws$$ NS=mkwgs$$
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	wg_path_setup
	wg_keys a b c d e
}

teardown_file() {
	wg_cleanup "$IFP"
	ip netns del "$NS" 2>/dev/null || true
}

teardown() {
	bg_stop_all
	wg_cleanup "$IFP"
	# directories a test made outside its own (private) one
	[ -z "${OPEN_DIR:-}" ] || rm -rf "$OPEN_DIR"
	rm -f /etc/wireguard/"$IFP"*.conf
	[ -z "${ETC_WG_MADE:-}" ] || rmdir /etc/wireguard
}

# open_dir: $OPEN_DIR, a new directory everyone may enter and read (the
# test's own directories are private), removed by teardown.
open_dir() {
	OPEN_DIR=$(mktemp -d /tmp/wgsetup-open.XXXXXX)
	chmod 755 "$OPEN_DIR"
}

# W ARGS...: wgsetup in the namespace, with only wireguard-go on PATH
W() { ip netns exec "$NS" env PATH="$WGPATH" "$MK_BIN/wgsetup" "$@"; }
N() { ip netns exec "$NS" "$@"; }

# A config for interface $1 with peer b (and c when $2 = two).
write_conf() {
	cat >"$BATS_TEST_TMPDIR/$1.conf" <<EOF
[Interface]
PrivateKey = $(cat "$KEYS/a.key")
ListenPort = 51820
Address = 10.77.0.1/24, 10.78.0.1/32
MTU = 1400
DNS = 10.77.0.53, mesh.test

[Peer]
PublicKey = $(cat "$KEYS/b.pub")
PresharedKey = $(cat "$KEYS/psk")
AllowedIPs = 10.77.0.2/32, 10.99.0.0/16
Endpoint = 127.0.0.1:51821
PersistentKeepalive = 25
EOF
	if [ "${2:-}" = two ]; then
		cat >>"$BATS_TEST_TMPDIR/$1.conf" <<EOF

[Peer]
PublicKey = $(cat "$KEYS/c.pub")
AllowedIPs = 10.77.0.3/32
Endpoint = [::1]:51822
EOF
	fi
}

@test "the PATH wgsetup runs with has no ip and no wg" {
	run ls "$WGPATH"
	assert_output wireguard-go
	run ip netns exec "$NS" env PATH="$WGPATH" /bin/sh -c 'for c in ip wg; do command -v $c; done; true'
	assert_output ""
}

@test "genkey and pubkey agree with wg genkey and wg pubkey" {
	local i k
	for i in 1 2 3 4 5; do
		k=$("$MK_BIN/wgsetup" genkey)
		[[ $k =~ ^[A-Za-z0-9+/]{43}=$ ]]
		assert_equal "$("$MK_BIN/wgsetup" pubkey <<<"$k")" "$(wg pubkey <<<"$k")"
		k=$(wg genkey)
		assert_equal "$("$MK_BIN/wgsetup" pubkey <<<"$k")" "$(wg pubkey <<<"$k")"
	done
	# wg's own clamping: an unclamped private key gives the same public key
	k=$(head -c 32 /dev/urandom | base64)
	assert_equal "$("$MK_BIN/wgsetup" pubkey <<<"$k")" "$(wg pubkey <<<"$k")"
	run "$MK_BIN/wgsetup" genpsk
	assert_success
	[[ $output =~ ^[A-Za-z0-9+/]{43}=$ ]]
	[ "$output" != "$("$MK_BIN/wgsetup" genpsk)" ]
}

@test "genkey warns when the key lands in a file others can read" {
	run --separate-stderr bash -c "umask 022; '$MK_BIN/wgsetup' genkey >'$BATS_TEST_TMPDIR/k1'"
	assert_success
	[[ $stderr == *"file others can read"* ]]
	run --separate-stderr bash -c "umask 077; '$MK_BIN/wgsetup' genkey >'$BATS_TEST_TMPDIR/k2'"
	assert_success
	assert_equal "$stderr" ""
	run --separate-stderr bash -c "'$MK_BIN/wgsetup' genkey | cat >/dev/null"
	assert_equal "$stderr" ""
}

@test "pubkey: a malformed key is one line and exit 2" {
	run --separate-stderr "$MK_BIN/wgsetup" pubkey <<<"not a key"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: pubkey: stdin: key is not 44 characters of base64"
	run --separate-stderr "$MK_BIN/wgsetup" pubkey </dev/null
	assert_failure 2
	assert_equal "$stderr" "wgsetup: pubkey: stdin: key file is empty"
}

@test "usage errors exit 2" {
	run -2 "$MK_BIN/wgsetup"
	run -2 "$MK_BIN/wgsetup" frobnicate
	run -2 "$MK_BIN/wgsetup" up "${IFP}a"
	run -2 "$MK_BIN/wgsetup" up 'no good' x.conf
	run -2 "$MK_BIN/wgsetup" up "${IFP}abcdefghijklmnop" x.conf
	run -2 "$MK_BIN/wgsetup" show --dump --json
	run -2 "$MK_BIN/wgsetup" down --userspace x
	run -2 "$MK_BIN/wgsetup" up x --mesh m.conf
	run -2 "$MK_BIN/wgsetup" genkey extra
	run -0 "$MK_BIN/wgsetup" --help
	assert_line --index 0 --regexp '^usage: wgsetup genkey$'
}

@test "a usage error shows the command's own usage, not every command's" {
	run -2 --separate-stderr "$MK_BIN/wgsetup" down --userspace x
	assert_equal "$stderr" "wgsetup: --userspace goes with up
usage: wgsetup down [-qv] interface"
	# an option error is reported once the command is known
	run -2 --separate-stderr "$MK_BIN/wgsetup" --frob show
	assert_equal "$stderr" "wgsetup: unknown option: --frob
usage: wgsetup show [--dump | --json] [interface]"
	run -2 --separate-stderr "$MK_BIN/wgsetup" -qz endpoints x
	assert_equal "$stderr" "wgsetup: unknown option: -z
usage: wgsetup endpoints [-qv] interface"
	run -2 --separate-stderr "$MK_BIN/wgsetup" show --dump=yes
	assert_equal "${stderr_lines[0]}" "wgsetup: --dump takes no value"
	run -2 --separate-stderr "$MK_BIN/wgsetup" set x -t
	assert_equal "${stderr_lines[0]}" "wgsetup: -t needs a value"
	assert_equal "${#stderr_lines[@]}" 5
	assert_equal "${stderr_lines[1]}" "usage: wgsetup set [-qv] [-t table] interface [listen-port port]"
	run -2 --separate-stderr "$MK_BIN/wgsetup" up x --mesh
	assert_equal "${stderr_lines[0]}" "wgsetup: --mesh needs a value"
	assert_equal "${#stderr_lines[@]}" 4
	run -2 --separate-stderr "$MK_BIN/wgsetup" up
	assert_equal "$stderr" "wgsetup: wrong number of arguments for up
usage: wgsetup up [-qv] [--userspace] interface [config]
       wgsetup up [-qv] [--userspace] [-p port] interface --mesh mesh.conf
               --key file"
	run -2 --separate-stderr "$MK_BIN/wgsetup" genkey extra
	assert_equal "$stderr" "wgsetup: wrong number of arguments for genkey
usage: wgsetup genkey"
	# no command, or one we do not know: every command's usage
	run -2 --separate-stderr "$MK_BIN/wgsetup" frobnicate
	assert_equal "${stderr_lines[0]}" "wgsetup: unknown command: frobnicate"
	assert_equal "${#stderr_lines[@]}" 15
	run -2 --separate-stderr "$MK_BIN/wgsetup"
	assert_equal "${#stderr_lines[@]}" 15
	# help for one command, on stdout
	run -0 --separate-stderr "$MK_BIN/wgsetup" setconf --help
	assert_output "usage: wgsetup setconf [-qv] interface config"
	assert_equal "$stderr" ""
}

@test "config errors name the file and line, exit 2, and create nothing" {
	local f=$BATS_TEST_TMPDIR/bad.conf
	printf '[Interface]\nListenPort = 51820\nAddress = 10.0.0.1/33\n' >"$f"
	run --separate-stderr W up "${IFP}a" "$f"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: $f:3: Address 10.0.0.1/33: bad prefix length"
	printf '[Interface]\n\n[Peer]\nEndpoint = 1.2.3.4:5\n' >"$f"
	run --separate-stderr W up "${IFP}a" "$f"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: $f:3: [Peer] without PublicKey"
	printf '[Interface]\nPostUp = iptables -F\n' >"$f"
	run --separate-stderr W up "${IFP}a" "$f"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: $f:2: PostUp is not supported (wgsetup runs no hooks)"
	run --separate-stderr W up "${IFP}a" "$BATS_TEST_TMPDIR/missing.conf"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: $BATS_TEST_TMPDIR/missing.conf: No such file or directory"
	run N ip link show "${IFP}a"
	assert_failure
	wg_gone "${IFP}a"
}

@test "up: wg show agrees with the config, and --dump equals wg show dump" {
	write_conf "${IFP}a" two
	run --separate-stderr W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(N wg show "${IFP}a" private-key)" "$(cat "$KEYS/a.key")"
	assert_equal "$(N wg show "${IFP}a" public-key)" "$(cat "$KEYS/a.pub")"
	assert_equal "$(N wg show "${IFP}a" listen-port)" 51820
	assert_equal "$(N wg show "${IFP}a" preshared-keys | sort)" "$(printf '%s\t%s\n%s\t(none)' \
		"$(cat "$KEYS/b.pub")" "$(cat "$KEYS/psk")" "$(cat "$KEYS/c.pub")" | sort)"
	assert_equal "$(N wg show "${IFP}a" endpoints | sort)" "$(printf '%s\t127.0.0.1:51821\n%s\t[::1]:51822' \
		"$(cat "$KEYS/b.pub")" "$(cat "$KEYS/c.pub")" | sort)"
	assert_equal "$(N wg show "${IFP}a" allowed-ips | sort)" "$(printf '%s\t10.77.0.2/32 10.99.0.0/16\n%s\t10.77.0.3/32' \
		"$(cat "$KEYS/b.pub")" "$(cat "$KEYS/c.pub")" | sort)"
	assert_equal "$(N wg show "${IFP}a" persistent-keepalive | sort)" "$(printf '%s\t25\n%s\toff' \
		"$(cat "$KEYS/b.pub")" "$(cat "$KEYS/c.pub")" | sort)"
	run W show --dump "${IFP}a"
	assert_success
	assert_equal "${#lines[@]}" 3
	dump_agrees "ip netns exec $NS" "${IFP}a"
}

@test "up: addresses, routes, MTU and link state as ip -j sees them" {
	write_conf "${IFP}a"
	run W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_success
	run N ip -j addr show dev "${IFP}a"
	assert_equal "$(jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"' <<<"$output" | sort)" \
		"$(printf '10.77.0.1/24\n10.78.0.1/32')"
	run N ip -j link show dev "${IFP}a"
	assert_equal "$(jq -r '.[0].mtu' <<<"$output")" 1400
	assert_equal "$(jq -r '.[0].flags | index("UP") != null' <<<"$output")" true
	# one route per allowed IP, marked as wgsetup's (proto 109); the
	# kernel's own route for the address's subnet stays the kernel's
	run N ip -j route show dev "${IFP}a"
	assert_equal "$(jq -r '.[] | select(.protocol == "109") | .dst' <<<"$output" | sort)" \
		"$(printf '10.77.0.2\n10.99.0.0/16')"
	assert_equal "$(jq -r '.[] | select(.protocol == "kernel") | .dst' <<<"$output")" 10.77.0.0/24
	run W show --json "${IFP}a"
	assert_success
	assert_equal "$(head -1 <<<"$output" | jq -r '"\(.backend) \(.mtu) \(.up) \(.listen_port) \(.peers)"')" \
		"userspace 1400 true 51820 1"
	assert_equal "$(sed -n 2p <<<"$output" | jq -r '"\(.endpoint) \(.allowed_ips | join(",")) \(.persistent_keepalive) \(.preshared_key)"')" \
		"127.0.0.1:51821 10.77.0.2/32,10.99.0.0/16 25 true"
	# no secret in the JSON, and the private key hidden for people
	refute_output --partial "$(cat "$KEYS/a.key")"
	run W show "${IFP}a"
	assert_line "  private key: (hidden)"
	assert_line "  link: up, mtu 1400"
	refute_output --partial "$(cat "$KEYS/a.key")"
}

@test "MTU defaults to 1280, and an IPv6 address and route work" {
	cat >"$BATS_TEST_TMPDIR/v6.conf" <<EOF
[Interface]
PrivateKey = $(cat "$KEYS/a.key")
Address = fd00:77::1/64

[Peer]
PublicKey = $(cat "$KEYS/b.pub")
AllowedIPs = fd00:99::/48
EOF
	run W up "${IFP}a" "$BATS_TEST_TMPDIR/v6.conf"
	assert_success
	assert_equal "$(N ip -j link show dev "${IFP}a" | jq -r '.[0].mtu')" 1280
	assert_equal "$(N ip -j -6 route show dev "${IFP}a" | jq -r '.[] | select(.protocol == "109") | .dst')" fd00:99::/48
	assert_equal "$(N ip -j -6 addr show dev "${IFP}a" scope global | jq -r '.[0].addr_info[0].local')" fd00:77::1
	# a random listening port was chosen
	[ "$(N wg show "${IFP}a" listen-port)" -gt 0 ]
}

@test "an interface that exists is refused" {
	write_conf "${IFP}a"
	run W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_success
	run --separate-stderr W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: ${IFP}a: already exists"
}

@test "set -t main: a peer joins, moves and leaves; its routes follow" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	run W set -t main "${IFP}a" peer "$(cat "$KEYS/c.pub")" endpoint 127.0.0.1:6000 \
		allowed-ips 10.77.0.3/32,10.55.0.0/24 keepalive 10
	assert_success
	assert_equal "$(N wg show "${IFP}a" dump | grep "^$(cat "$KEYS/c.pub")" | cut -f 3,4,8)" \
		"$(printf '127.0.0.1:6000\t10.77.0.3/32,10.55.0.0/24\t10')"
	assert_equal "$(N ip -j route show dev "${IFP}a" proto 109 | jq -r '.[].dst' | sort)" \
		"$(printf '10.55.0.0/24\n10.77.0.2\n10.77.0.3\n10.99.0.0/16')"
	# a Tailscale nodekey names the same peer
	run W set "${IFP}a" peer "nodekey:$(base64 -d "$KEYS/c.pub" | od -An -tx1 | tr -d ' \n')" \
		allowed-ips 10.77.0.3/32 listen-port 51830
	assert_failure 2
	run W set -t main "${IFP}a" listen-port 51830 peer "nodekey:$(base64 -d <"$KEYS/c.pub" | od -An -tx1 | tr -d ' \n')" \
		allowed-ips 10.77.0.3/32
	assert_success
	assert_equal "$(N wg show "${IFP}a" listen-port)" 51830
	assert_equal "$(N wg show "${IFP}a" allowed-ips | grep "^$(cat "$KEYS/c.pub")" | cut -f 2)" 10.77.0.3/32
	assert_equal "$(N ip -j route show dev "${IFP}a" proto 109 | jq -r '.[].dst' | sort)" \
		"$(printf '10.77.0.2\n10.77.0.3\n10.99.0.0/16')"
	run W set -t main "${IFP}a" peer "$(cat "$KEYS/c.pub")" remove
	assert_success
	run N wg show "${IFP}a" peers
	assert_output "$(cat "$KEYS/b.pub")"
	assert_equal "$(N ip -j route show dev "${IFP}a" proto 109 | jq -r '.[].dst' | sort)" \
		"$(printf '10.77.0.2\n10.99.0.0/16')"
	# -t off leaves routes alone
	run W set -t off "${IFP}a" peer "$(cat "$KEYS/d.pub")" allowed-ips 10.40.0.0/16
	assert_success
	run N ip route show dev "${IFP}a" 10.40.0.0/16
	assert_output ""
}

@test "set changes what wg set changes and nothing else, also on a down link" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	routes=$(N ip -j route show dev "${IFP}a" | jq -c 'sort_by(.dst)')
	run --separate-stderr W set "${IFP}a" peer "$(cat "$KEYS/c.pub")" allowed-ips 10.55.0.0/24 \
		peer "$(cat "$KEYS/b.pub")" allowed-ips 10.77.0.2/32
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(N wg show "${IFP}a" allowed-ips | sort)" "$(printf '%s\t10.77.0.2/32\n%s\t10.55.0.0/24' \
		"$(cat "$KEYS/b.pub")" "$(cat "$KEYS/c.pub")" | sort)"
	# no route added for c, none taken from b (10.99.0.0/16 stays)
	assert_equal "$(N ip -j route show dev "${IFP}a" | jq -c 'sort_by(.dst)')" "$routes"
	# a down link is no obstacle to wg set
	N ip link set "${IFP}a" down
	run --separate-stderr W set "${IFP}a" listen-port 51831 peer "$(cat "$KEYS/d.pub")" allowed-ips 10.40.0.0/16
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(N wg show "${IFP}a" listen-port)" 51831
	N wg show "${IFP}a" peers | grep -qx "$(cat "$KEYS/d.pub")"
	# with -t, the routes: refused on a down link before anything changes
	run --separate-stderr W set -t main "${IFP}a" peer "$(cat "$KEYS/e.pub")" allowed-ips 10.41.0.0/16
	assert_failure 3
	assert_equal "$stderr" "wgsetup: ${IFP}a: the link is down: its routes cannot be set (nothing was changed)"
	run N wg show "${IFP}a" peers
	refute_output --partial "$(cat "$KEYS/e.pub")"
	N ip link set "${IFP}a" up
	run W set -t main "${IFP}a" peer "$(cat "$KEYS/e.pub")" allowed-ips 10.41.0.0/16
	assert_success
	assert_equal "$(N ip -j route show dev "${IFP}a" proto 109 | jq -r '.[].dst' | sort)" \
		"$(printf '10.40.0.0/16\n10.41.0.0/16\n10.55.0.0/24\n10.77.0.2')"
}

@test "set fwmark: decimal, 0x and hex, off, as wg takes them" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	run W set "${IFP}a" fwmark 0x1234
	assert_success
	assert_equal "$(N wg show "${IFP}a" fwmark)" 0x1234
	run W set "${IFP}a" fwmark 4660
	assert_success
	assert_equal "$(N wg show "${IFP}a" fwmark)" 0x1234
	run W set "${IFP}a" fwmark 0xffffffff
	assert_success
	assert_equal "$(N wg show "${IFP}a" fwmark)" 0xffffffff
	run W set "${IFP}a" fwmark off
	assert_success
	assert_equal "$(N wg show "${IFP}a" fwmark)" off
	for bad in 0x100000000 4294967296 0x 0xg 0x-1 12ab; do
		run --separate-stderr W set "${IFP}a" fwmark "$bad"
		assert_failure 2
		assert_equal "$stderr" "wgsetup: set: fwmark $bad: want a number, 0x and hex digits, or off"
	done
	assert_equal "$(N wg show "${IFP}a" fwmark)" off
}

@test "set: bad words, keys and unknown interfaces" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	run --separate-stderr W set "${IFP}a" peer nope
	assert_failure 2
	[[ $stderr == "wgsetup: set: peer nope: key has the wrong length"* ]]
	run --separate-stderr W set "${IFP}a" endpoint 1.2.3.4:5
	assert_failure 2
	assert_equal "$stderr" "wgsetup: set: unexpected argument: endpoint"
	run --separate-stderr W set "${IFP}a" peer "$(cat "$KEYS/c.pub")" keepalive 70000
	assert_failure 2
	run --separate-stderr W set "${IFP}a" peer "$(cat "$KEYS/c.pub")" allowed-ips 10.0.0.0/40
	assert_failure 2
	assert_equal "$stderr" "wgsetup: allowed-ips 10.0.0.0/40: bad prefix length"
	run --separate-stderr W set "${IFP}z" listen-port 1
	assert_failure 2
	assert_equal "$stderr" "wgsetup: ${IFP}z: no such WireGuard interface"
	run --separate-stderr W show "${IFP}z"
	assert_failure 2
	run --separate-stderr W down "${IFP}z"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: ${IFP}z: no such WireGuard interface"
	# private keys come from files only: a key on argv is a file name
	run --separate-stderr W set "${IFP}a" private-key "$(cat "$KEYS/b.key")"
	assert_failure 2
	refute_output --partial "Operation"
	# as wg: an empty file removes a key (/dev/null or a file of nothing)
	W set "${IFP}a" peer "$(cat "$KEYS/b.pub")" preshared-key "$KEYS/psk"
	assert_equal "$(N wg show "${IFP}a" preshared-keys | grep "^$(cat "$KEYS/b.pub")" | cut -f 2)" "$(cat "$KEYS/psk")"
	: >"$BATS_TEST_TMPDIR/empty"
	run --separate-stderr W set "${IFP}a" private-key /dev/null peer "$(cat "$KEYS/b.pub")" \
		preshared-key "$BATS_TEST_TMPDIR/empty"
	assert_success
	assert_equal "$(N wg show "${IFP}a" private-key)" "(none)"
	assert_equal "$(N wg show "${IFP}a" preshared-keys | grep "^$(cat "$KEYS/b.pub")" | cut -f 2)" "(none)"
	# a file of blanks is no key and not empty: an error
	echo "  " >"$BATS_TEST_TMPDIR/blank"
	run --separate-stderr W set "${IFP}a" private-key "$BATS_TEST_TMPDIR/blank"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: $BATS_TEST_TMPDIR/blank: key file is empty"
}

@test "endpoints: PUBKEY IP:PORT lines move peers as they arrive" {
	write_conf "${IFP}a" two
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	local fifo=$BATS_TEST_TMPDIR/ep
	mkfifo "$fifo"
	# our end stays open (read-write, so nothing blocks) until we close
	# it; the reader drops its copy of it, or it would never see EOF
	exec 5<>"$fifo"
	bg_start ep bash -c 'exec 5>&- <"$1"; shift; exec "$@"' _ "$fifo" \
		ip netns exec "$NS" env PATH="$WGPATH" "$MK_BIN/wgsetup" -v endpoints "${IFP}a"
	echo "$(cat "$KEYS/b.pub") 127.0.0.9:7000" >&5
	wait_for 5 "N wg show ${IFP}a endpoints | grep -q 127.0.0.9:7000"
	echo "$(cat "$KEYS/c.pub")	[::1]:7001" >&5
	wait_for 5 "N wg show ${IFP}a endpoints | grep -q '\[::1\]:7001'"
	echo "$(cat "$KEYS/b.pub") 127.0.0.10:7002" >&5
	wait_for 5 "N wg show ${IFP}a endpoints | grep -q 127.0.0.10:7002"
	exec 5>&-
	wait "$(bg_pid ep)"
	grep -q "endpoint 127.0.0.10:7002" "$BATS_TEST_TMPDIR/ep.log"
	# the other settings of the peers are untouched
	assert_equal "$(N wg show "${IFP}a" allowed-ips | cut -f 2 | sort)" "$(printf '10.77.0.2/32 10.99.0.0/16\n10.77.0.3/32')"
}

@test "endpoints: bad lines and unknown peers are named, the rest applied, exit 2" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	run --separate-stderr W endpoints "${IFP}a" <<EOF
# comments and blank lines are fine

$(cat "$KEYS/b.pub") 1.2.3.4
junk
$(cat "$KEYS/d.pub") 127.0.0.1:9
$(cat "$KEYS/b.pub") 127.0.0.5:6000
EOF
	assert_failure 2
	assert_equal "$(N wg show "${IFP}a" endpoints | cut -f 2)" 127.0.0.5:6000
	[[ $stderr == *"stdin:3: 1.2.3.4: missing port"* ]]
	[[ $stderr == *"stdin:4: want PUBKEY IP:PORT"* ]]
	[[ $stderr == *"stdin:5: $(cat "$KEYS/d.pub"): no such peer"* ]]
	run N wg show "${IFP}a" peers
	assert_output "$(cat "$KEYS/b.pub")"
}

@test "setconf applies the WireGuard part of a config as wg setconf does" {
	write_conf "${IFP}a" two
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	grep -v -e '^Address' -e '^MTU' -e '^DNS' "$BATS_TEST_TMPDIR/${IFP}a.conf" >"$BATS_TEST_TMPDIR/plain.conf"
	sed -i 's/51821/51999/' "$BATS_TEST_TMPDIR/plain.conf"
	N wg setconf "${IFP}a" "$BATS_TEST_TMPDIR/plain.conf"
	# what wg made of it, less the counters that move on their own
	want=$(N wg show "${IFP}a" dump | cut -f 1-4,8 | dump_sorted)
	N wg set "${IFP}a" peer "$(cat "$KEYS/d.pub")" allowed-ips 10.1.1.1/32 \
		peer "$(cat "$KEYS/b.pub")" allowed-ips 10.2.2.2/32
	run W setconf "${IFP}a" "$BATS_TEST_TMPDIR/plain.conf"
	assert_success
	assert_equal "$(N wg show "${IFP}a" dump | cut -f 1-4,8 | dump_sorted)" "$want"
}

@test "up --mesh: every other node a peer; an edited mesh.conf adds and removes peers and addresses, the rest untouched" {
	cat >"$BATS_TEST_TMPDIR/mesh.conf" <<EOF
domain mesh.test
node a $(cat "$KEYS/a.pub") 100.64.0.1
node b $(cat "$KEYS/b.pub") 100.64.0.2
node c $(cat "$KEYS/c.pub") 100.64.0.3
EOF
	run W up "${IFP}m" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key" -p 41641
	assert_success
	assert_equal "$(N wg show "${IFP}m" public-key)" "$(cat "$KEYS/b.pub")"
	assert_equal "$(N wg show "${IFP}m" listen-port)" 41641
	assert_equal "$(N wg show "${IFP}m" allowed-ips | sort)" "$(printf '%s\t100.64.0.1/32\n%s\t100.64.0.3/32\n' \
		"$(cat "$KEYS/a.pub")" "$(cat "$KEYS/c.pub")" | sort)"
	assert_equal "$(N ip -j addr show dev "${IFP}m" | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')" \
		100.64.0.2/32
	assert_equal "$(N ip -j route show dev "${IFP}m" proto 109 | jq -r '.[].dst' | sort)" "$(printf '100.64.0.1\n100.64.0.3')"
	assert_equal "$(N ip -j link show dev "${IFP}m" | jq -r '.[0].mtu')" 1280
	# an endpoint set meanwhile (as punch would) must survive the edit
	W set "${IFP}m" peer "$(cat "$KEYS/a.pub")" endpoint 127.0.0.1:7777
	sed -i '/^node c/d' "$BATS_TEST_TMPDIR/mesh.conf"
	echo "node d $(cat "$KEYS/d.pub") 100.64.0.4" >>"$BATS_TEST_TMPDIR/mesh.conf"
	run --separate-stderr W -v up "${IFP}m" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_success
	[[ $stderr == *"1 peers added, 1 removed, 0 changed"* ]]
	assert_equal "$(N wg show "${IFP}m" allowed-ips | sort)" "$(printf '%s\t100.64.0.1/32\n%s\t100.64.0.4/32\n' \
		"$(cat "$KEYS/a.pub")" "$(cat "$KEYS/d.pub")" | sort)"
	assert_equal "$(N wg show "${IFP}m" endpoints | grep "^$(cat "$KEYS/a.pub")" | cut -f 2)" 127.0.0.1:7777
	assert_equal "$(N wg show "${IFP}m" listen-port)" 41641
	assert_equal "$(N ip -j route show dev "${IFP}m" proto 109 | jq -r '.[].dst' | sort)" "$(printf '100.64.0.1\n100.64.0.4')"
	# nothing changed: nothing done
	run --separate-stderr W -v up "${IFP}m" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_success
	[[ $stderr == *"0 peers added, 0 removed, 0 changed"* ]]
	[[ $stderr != *"address del"* ]]
	# this node's own address moved: the old one goes, the new one comes
	sed -i 's|^\(node b .*\) 100\.64\.0\.2$|\1 100.64.0.12|' "$BATS_TEST_TMPDIR/mesh.conf"
	run --separate-stderr W -v up "${IFP}m" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_success
	[[ $stderr == *"address del 100.64.0.2/32"* ]]
	assert_equal "$(N ip -j addr show dev "${IFP}m" | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')" \
		100.64.0.12/32
	# a key that is no node of the mesh
	run --separate-stderr W up "${IFP}n" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/e.key"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: $KEYS/e.key: this key is no node of $BATS_TEST_TMPDIR/mesh.conf"
	wg_gone "${IFP}n"
}

# mesh_conf: $BATS_TEST_TMPDIR/mesh.conf with nodes a, b and c.
mesh_conf() {
	cat >"$BATS_TEST_TMPDIR/mesh.conf" <<EOF
domain mesh.test
node a $(cat "$KEYS/a.pub") 100.64.0.1
node b $(cat "$KEYS/b.pub") 100.64.0.2
node c $(cat "$KEYS/c.pub") 100.64.0.3
EOF
}

# mesh_in_line IFACE: what up --mesh as node b makes, link included.
mesh_in_line() {
	assert_equal "$(N wg show "$1" public-key)" "$(cat "$KEYS/b.pub")"
	assert_equal "$(N wg show "$1" allowed-ips | sort)" "$(printf '%s\t100.64.0.1/32\n%s\t100.64.0.3/32\n' \
		"$(cat "$KEYS/a.pub")" "$(cat "$KEYS/c.pub")" | sort)"
	assert_equal "$(N ip -j addr show dev "$1" | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')" \
		100.64.0.2/32
	assert_equal "$(N ip -j link show dev "$1" | jq -r '"\(.[0].mtu) \(.[0].flags | index("UP") != null)"')" "1280 true"
	assert_equal "$(N ip -j route show dev "$1" proto 109 | jq -r '.[].dst' | sort)" "$(printf '100.64.0.1\n100.64.0.3')"
}

@test "up --mesh repairs an up that was killed half way, link state and MTU included" {
	local impl=$BATS_TEST_TMPDIR/impl
	mesh_conf
	# SIGKILL (nothing can hold it) for up the moment it has started the
	# implementation: wireguard-go runs, with a TUN that is down at its
	# own MTU, and no key, peer or address
	# (wireguard-go by name, from wgsetup's PATH, so that its command
	# line is what wg_cleanup looks for should the test fail)
	cat >"$impl" <<'EOF'
#!/bin/sh
kill -KILL $PPID
exec wireguard-go "$@"
EOF
	chmod +x "$impl"
	run ip netns exec "$NS" env PATH="$WGPATH" WG_QUICK_USERSPACE_IMPLEMENTATION="$impl" \
		"$MK_BIN/wgsetup" up "${IFP}k" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_failure 137
	wait_for 10 "[ -S /var/run/wireguard/${IFP}k.sock ] && N ip link show ${IFP}k >/dev/null 2>&1"
	assert_equal "$(N ip -j link show dev "${IFP}k" | jq -r '"\(.[0].mtu) \(.[0].flags | index("UP") != null)"')" "1420 false"
	assert_equal "$(N wg show "${IFP}k" private-key)" "(none)"
	# up again puts it right
	run --separate-stderr W -v up "${IFP}k" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_success
	[[ $stderr == *"2 peers added, 0 removed, 0 changed"* ]]
	[[ $stderr == *"${IFP}k: mtu 1280, up"* ]]
	mesh_in_line "${IFP}k"
	# killed later, once the peers were set: down, at another MTU,
	# without addresses (and so without routes)
	N ip link set "${IFP}k" down mtu 1420
	N ip addr flush dev "${IFP}k"
	run W up "${IFP}k" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_success
	mesh_in_line "${IFP}k"
	# in line already: nothing to do, the link not touched
	run --separate-stderr W -v up "${IFP}k" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$KEYS/b.key"
	assert_success
	[[ $stderr == *"0 peers added, 0 removed, 0 changed"* ]]
	[[ $stderr != *"mtu"* && $stderr != *"address"* && $stderr != *"route"* ]]
	run W down "${IFP}k"
	assert_success
	wg_gone "${IFP}k"
}

@test "up IFACE without a config reads /etc/wireguard/IFACE.conf, as wg-quick" {
	write_conf "${IFP}e"
	if [ ! -d /etc/wireguard ]; then
		mkdir -m 700 /etc/wireguard
		ETC_WG_MADE=1
	fi
	install -m 600 "$BATS_TEST_TMPDIR/${IFP}e.conf" "/etc/wireguard/${IFP}e.conf"
	run --separate-stderr W up "${IFP}e"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(N wg show "${IFP}e" listen-port)" 51820
	assert_equal "$(N wg show "${IFP}e" peers)" "$(cat "$KEYS/b.pub")"
	assert_equal "$(N ip -j link show dev "${IFP}e" | jq -r '.[0].mtu')" 1400
	run --separate-stderr W up "${IFP}f"
	assert_failure 2
	assert_equal "$stderr" "wgsetup: /etc/wireguard/${IFP}f.conf: No such file or directory"
	wg_gone "${IFP}f"
	# never a config and more, nor a config and --mesh
	run -2 W up "${IFP}f" "$BATS_TEST_TMPDIR/${IFP}e.conf" extra
	run -2 W up "${IFP}f" "$BATS_TEST_TMPDIR/${IFP}e.conf" --mesh "$BATS_TEST_TMPDIR/${IFP}e.conf" --key "$KEYS/b.key"
	wg_gone "${IFP}f"
}

@test "a config or key file others can read gets wg-quick's warning" {
	local d f
	write_conf "${IFP}a"
	open_dir
	d=$(realpath "$OPEN_DIR")
	f=$d/wg.conf
	install -m 644 "$BATS_TEST_TMPDIR/${IFP}a.conf" "$f"
	run --separate-stderr W up "${IFP}a" "$f"
	assert_success
	assert_equal "$stderr" "wgsetup: Warning: \`$f' is world accessible"
	# through a link, the file itself is named, as wg-quick's readlink -f
	ln -s wg.conf "$d/link.conf"
	run --separate-stderr W setconf "${IFP}a" "$d/link.conf"
	assert_success
	assert_equal "$stderr" "wgsetup: Warning: \`$f' is world accessible"
	# key files: set private-key and preshared-key, up --key
	install -m 644 "$KEYS/c.key" "$d/c.key"
	install -m 644 "$KEYS/psk" "$d/psk"
	run --separate-stderr W set "${IFP}a" private-key "$d/c.key" peer "$(cat "$KEYS/b.pub")" preshared-key "$d/psk"
	assert_success
	assert_equal "$stderr" "wgsetup: Warning: \`$d/c.key' is world accessible
wgsetup: Warning: \`$d/psk' is world accessible"
	assert_equal "$(N wg show "${IFP}a" public-key)" "$(cat "$KEYS/c.pub")"
	mesh_conf
	run --separate-stderr W up "${IFP}m" --mesh "$BATS_TEST_TMPDIR/mesh.conf" --key "$d/c.key"
	assert_success
	assert_equal "$stderr" "wgsetup: Warning: \`$d/c.key' is world accessible"
	# -q keeps it quiet; so does a file closed to others, or a directory
	# they cannot pass; an empty key file (it removes the key) holds no
	# secret
	run --separate-stderr W -q setconf "${IFP}a" "$f"
	assert_success
	assert_equal "$stderr" ""
	chmod 640 "$f" "$d/c.key"
	run --separate-stderr W setconf "${IFP}a" "$f"
	assert_success
	assert_equal "$stderr" ""
	chmod 644 "$f"
	chmod 750 "$d"
	run --separate-stderr W setconf "${IFP}a" "$f"
	assert_success
	assert_equal "$stderr" ""
	run --separate-stderr W set "${IFP}a" private-key "$d/c.key" peer "$(cat "$KEYS/b.pub")" preshared-key /dev/null
	assert_success
	assert_equal "$stderr" ""
}

@test "down leaves no interface, address, route, socket or process" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	[ -S "/var/run/wireguard/${IFP}a.sock" ]
	pgrep -f "^wireguard-go -f ${IFP}a\$"
	run W down "${IFP}a"
	assert_success
	assert_output ""
	wg_gone "${IFP}a"
	run N ip -j route show
	refute_output --partial "${IFP}a"
	run N ip -j addr show
	refute_output --partial 10.77.0.1
	run N wg show interfaces
	refute_output --partial "${IFP}a"
}

@test "a failure half way rolls back everything up did" {
	# a route to 10.99.0.0/16 already on lo: up fails at the routes
	N ip route add 10.99.0.0/16 dev lo
	write_conf "${IFP}a"
	run --separate-stderr W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	N ip route del 10.99.0.0/16 dev lo
	assert_failure 3
	assert_equal "$stderr" "wgsetup: route 10.99.0.0/16: the table already routes it elsewhere"
	wg_gone "${IFP}a"
}

@test "a configuration the implementation refuses: its reason, exit 3, rolled back" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	# the same ListenPort twice in one namespace: wireguard-go hangs up
	# mid-request, which must not kill wgsetup with SIGPIPE
	run --separate-stderr W up "${IFP}b" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_failure 3
	assert_equal "$stderr" "wgsetup: ${IFP}b: the implementation refused the configuration: Address already in use"
	wg_gone "${IFP}b"
	run N wg show "${IFP}a" listen-port
	assert_output 51820
}

@test "no privilege: one line, exit 3, nothing left" {
	local d
	write_conf "${IFP}a"
	# nobody must reach the program, the config and wireguard-go, wherever
	# the checkout lives (under /root, say): copies in a directory of
	# their own. The config is nobody's own, 0600: no warning either.
	open_dir
	d=$OPEN_DIR
	mkdir "$d/path"
	install -m 755 "$MK_BIN/wgsetup" "$d/wgsetup"
	ln -s "$(command -v wireguard-go)" "$d/path/wireguard-go"
	install -m 600 -o nobody "$BATS_TEST_TMPDIR/${IFP}a.conf" "$d/wg.conf"
	run --separate-stderr ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PATH="$d/path" "$d/wgsetup" up "${IFP}a" "$d/wg.conf"
	assert_failure 3
	assert_equal "$stderr" "wgsetup: ${IFP}a: cannot create the link: Operation not permitted"
	run --separate-stderr ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PATH="$d/path" "$d/wgsetup" up --userspace "${IFP}a" "$d/wg.conf"
	assert_failure 3
	[[ $stderr == "wgsetup: ${IFP}a: wireguard-go exited with status 1: "*"Failed to create TUN device: permission denied" ]]
	wg_gone "${IFP}a"
}

@test "WG_QUICK_USERSPACE_IMPLEMENTATION runs in the foreground, and its failure is reported" {
	local impl=$BATS_TEST_TMPDIR/impl
	cat >"$impl" <<EOF
#!/bin/sh
echo "\$* WG_PROCESS_FOREGROUND=\$WG_PROCESS_FOREGROUND" >"$BATS_TEST_TMPDIR/impl.args"
exec wireguard-go "\$@"
EOF
	chmod +x "$impl"
	write_conf "${IFP}a"
	run ip netns exec "$NS" env PATH="$WGPATH" WG_QUICK_USERSPACE_IMPLEMENTATION="$impl" \
		"$MK_BIN/wgsetup" up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_success
	assert_equal "$(cat "$BATS_TEST_TMPDIR/impl.args")" "-f ${IFP}a WG_PROCESS_FOREGROUND=1"
	assert_equal "$(N wg show "${IFP}a" listen-port)" 51820
	W down "${IFP}a"
	wg_gone "${IFP}a"
	printf '#!/bin/sh\necho "cannot do that today" >&2\nexit 7\n' >"$impl"
	run --separate-stderr ip netns exec "$NS" env PATH="$WGPATH" WG_QUICK_USERSPACE_IMPLEMENTATION="$impl" \
		"$MK_BIN/wgsetup" up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	assert_failure 3
	assert_equal "$stderr" "wgsetup: ${IFP}a: $impl exited with status 7: cannot do that today"
	wg_gone "${IFP}a"
}

@test "show with no interface lists every WireGuard interface" {
	write_conf "${IFP}a"
	W up "${IFP}a" "$BATS_TEST_TMPDIR/${IFP}a.conf"
	run W show --dump
	assert_success
	assert_output --partial "${IFP}a	$(cat "$KEYS/a.key")	$(cat "$KEYS/a.pub")	51820	off"
}
