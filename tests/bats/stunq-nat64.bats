#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# stunq on the lab's IPv6-only host, h-v6only, behind the NAT64 router
# (tayga with 64:ff9b::/96, then EIM masquerade; tests/lab/lab.sh): the
# IPv4 responder, asked at its RFC 6052 address, sees the router's WAN.

load helpers

setup_file() {
	lab_up mk64$$
}

teardown_file() {
	lab_down
}

teardown() {
	bg_stop_all
}

# q HOST ARGS...: stunq inside a lab host
q() {
	local h=$1; shift
	"$LAB" exec "$h" "$MK_BIN/stunq" "$@"
}

# IPv4 address $1 in the NAT64 prefix (a /96): 198.18.0.10 -> 64:ff9b::c612:a
nat64() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	printf '%s%x:%x\n' "${NAT64_PREFIX%/96}" $(($1 << 8 | $2)) $(($3 << 8 | $4))
}

@test "IPv6-only host: the responder at its NAT64 address sees the router's WAN" {
	assert_equal "$(nat64 "$STUN_IP1")" 64:ff9b::c612:a
	run --separate-stderr q h-v6only "[$(nat64 "$STUN_IP1")]:3478"
	assert_success
	assert_output --regexp '^[0-9.]+:[0-9]+$'
	assert_equal "${output%:*}" "$NAT64_WAN"
	# RFC 6052's dotted form, default port
	run --separate-stderr q h-v6only "[${NAT64_PREFIX%/96}$STUN_IP1]"
	assert_success
	assert_equal "${output%:*}" "$NAT64_WAN"
}

@test "IPv6-only host: source port kept, one mapping for three endpoints" {
	local s1 s2
	s1=$(nat64 "$STUN_IP1") s2=$(nat64 "$STUN_IP2")
	run --separate-stderr q h-v6only -p 40000 "[$s1]:3478" "[$s2]:3478" \
		"[$s1]:3479"
	assert_success
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" "$NAT64_WAN:40000"
	assert_equal "${lines[1]}" "${lines[0]}"
	assert_equal "${lines[2]}" "${lines[0]}"
}

@test "--json through NAT64: mapped address IPv4, server and local IPv6" {
	run --separate-stderr q h-v6only --json -p 40001 \
		"[$(nat64 "$STUN_IP1")]:3478"
	assert_success
	run $PY -c 'import json, sys
j = json.loads(sys.stdin.read())
for k in ("server", "address", "local", "mapped", "response_origin"):
    print(k, j[k])' <<<"$output"
	assert_success
	assert_line "server [$(nat64 "$STUN_IP1")]:3478"
	assert_line "address [$(nat64 "$STUN_IP1")]:3478"
	assert_line "local [$H_V6ONLY_IP6]:40001"
	assert_line "mapped $NAT64_WAN:40001"
	# the responder's own (IPv4) view of where it answered from
	assert_line "response_origin $STUN_IP1:3478"
}

@test "IPv6-only host: an IPv4 server is unreachable at once, exit 3" {
	t0=$(date +%s%3N)
	run -3 --separate-stderr q h-v6only -t 5 "$STUN_IP1"
	assert_equal "$output" '-'
	[[ $stderr == *"$STUN_IP1: cannot send: Network is unreachable"* ]]
	# no route will not come within the timeout: no waiting it out
	[ $(($(date +%s%3N) - t0)) -lt 2500 ]
}
