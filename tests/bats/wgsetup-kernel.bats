#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# wgsetup's kernel backend, for real: tests/qemu/run.sh boots Debian's own
# kernel (with wireguard.ko) under QEMU and runs tests/qemu/guest.sh there:
# two namespaces joined by kernel WireGuard that wgsetup configured, set,
# endpoints and down on the kernel, 10,000 peers over many netlink
# messages, each judged by iproute2 and wg inside the guest. The packages
# are fetched with apt-get download into build/wgsetup-qemu/cache the first
# time (about 72 MB). Software emulation: about a minute.

load helpers

setup_file() {
	[ "$(id -u)" = 0 ] || { echo "needs root (apt-get download)" >&2; return 1; }
	"$TOP/tests/qemu/run.sh" >"$BATS_FILE_TMPDIR/qemu.out" 2>"$BATS_FILE_TMPDIR/qemu.err" ||
		{ cat "$BATS_FILE_TMPDIR/qemu.err" >&2; return 1; }
}

guest() { cat "$BATS_FILE_TMPDIR/qemu.out"; }

@test "the guest ran every check and none failed" {
	run guest
	assert_line "wgsetup-qemu: done"
	refute_line --regexp '^not ok'
	[ "$(grep -c '^ok - ' <<<"$output")" -ge 30 ]
}

@test "wgsetup chose kernel WireGuard and two namespaces ping through it" {
	run guest
	assert_line "ok - the kernel backend was chosen"
	assert_line "ok - the link is of kind wireguard"
	assert_line "ok - n1 pings n2 through kernel WireGuard"
	assert_line "ok - n2 pings n1"
	assert_line "ok - show --dump equals wg show dump (live)"
}

@test "addresses, routes, MTU, set, endpoints and down on the kernel" {
	run guest
	assert_line "ok - mtu 1420 and up"
	assert_line "ok - routes for the allowed IPs"
	assert_line "ok - wg sees it"
	assert_line "ok - wg sees the move"
	assert_line "ok - its route goes"
	assert_line "ok - its routes and addresses too"
}

@test "set is wg set unless -t; fwmark in hex; up --mesh mends a half-made link" {
	run guest
	assert_line "ok - set without -t"
	assert_line "ok - and no route"
	assert_line "ok - set without -t on a down link"
	assert_line "ok - set -t on a down link is refused"
	assert_line "ok - and changed nothing"
	assert_line "ok - wg sees fwmark 0x1234"
	assert_line "ok - brings the link up at 1280"
	assert_line "ok - with its mesh address and routes"
}

@test "10,000 peers in several netlink messages, as wg sees them" {
	run guest
	assert_line --regexp '^ok - in several netlink messages \([0-9]+\)$'
	assert_line "ok - wg sees 10,000 peers"
	assert_line "ok - the first peer's 1,001 allowed IPs are all there"
	assert_line "ok - show --dump equals wg show dump (10,000 peers)"
	assert_line "ok - 11,000 routes"
}
