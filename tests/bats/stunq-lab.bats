#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# stunq and its responder behind the lab's NATs (tests/lab/lab.sh), judged
# also by reference tools no one here wrote: coturn, stun-client's `stun`
# and coturn's turnutils_natdiscovery.

load helpers

setup_file() {
	lab_up mkq$$
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

@test "public host: the servers see its own address" {
	run --separate-stderr q pub -p 40000 "$STUN_IP1"
	assert_success
	assert_output "$PUB_IP:40000"
}

@test "public host over IPv6: [addr]:port" {
	bg_start r6 "$LAB" exec stun "$MK_BIN/stunq" -l "[$STUN_IP6_1]:3480"
	wait_log r6 'listening on'
	run --separate-stderr q pub -6 -p 40000 "[$STUN_IP6_1]:3480"
	assert_success
	assert_output "[$PUB_IP6]:40000"
}

@test "EIM host: two servers see the same mapped port from one socket" {
	run --separate-stderr q h-eim1 -p 40000 "$STUN_IP1:3478" "$STUN_IP2:3478" "$STUN_IP1:3479"
	assert_success
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" "$EIM1_WAN:40000"
	assert_equal "${lines[1]}" "${lines[0]}"
	assert_equal "${lines[2]}" "${lines[0]}"
}

@test "EDM host: each destination sees a different port" {
	run --separate-stderr q h-edm1 -p 40000 "$STUN_IP1:3478" "$STUN_IP2:3478" "$STUN_IP1:3479"
	assert_success
	assert_equal "${#lines[@]}" 3
	ip0=${lines[0]%:*} ip1=${lines[1]%:*}
	assert_equal "$ip0" "$EDM1_WAN"
	assert_equal "$ip1" "$EDM1_WAN"
	ports=$(printf '%s\n' "${lines[@]}" | cut -d: -f2 | sort -u | wc -l)
	assert_equal "$ports" 3
}

@test "double NAT: the mapping is the outer (carrier-grade) router's" {
	run --separate-stderr q h-dbl -p 40000 "$STUN_IP1"
	assert_success
	assert_equal "${output%:*}" "$CGNAT_WAN"
}

@test "UDP blocked: exit 3 within the timeout" {
	t0=$(date +%s%3N)
	run -3 --separate-stderr q h-block -t 1 "$STUN_IP1" "$STUN_IP2"
	# -t 1, not the default 3 s (the margin is for a loaded machine)
	[ $(($(date +%s%3N) - t0)) -lt 2500 ]
	assert_equal "${lines[0]}" '-'
	assert_equal "${lines[1]}" '-'
}

@test "behaviour discovery attributes come back through a NAT" {
	run --separate-stderr q h-eim1 --json "$STUN_IP1"
	assert_success
	assert_output --partial "\"other_address\":\"$STUN_IP2:3479\""
	assert_output --partial "\"response_origin\":\"$STUN_IP1:3478\""
}

@test "stunq against coturn reports the address coturn saw" {
	bg_start coturn "$LAB" exec stun2 turnserver -n --no-cli --no-tls --no-dtls \
		--stun-only --listening-ip "$STUN2_IP" --listening-port 3478 \
		--log-file stdout --simple-log --pidfile "$BATS_TEST_TMPDIR/turn.pid" \
		--userdb "$BATS_TEST_TMPDIR/turndb"
	local i=0
	until out=$(q h-eim1 -q -t 0.2 -p 40001 "$STUN2_IP"); do
		i=$((i + 1)); [ $i -lt 40 ] || break
	done
	assert_equal "$out" "$EIM1_WAN:40001"
	# the router's own record of the mapping says the same
	run "$LAB" exec eim1 conntrack -L -p udp --dst "$STUN2_IP" --dport 3478
	assert_output --regexp "src=$STUN2_IP dst=$EIM1_WAN sport=3478 dport=40001"
}

# The classic RFC 3489 classifier; its exit status encodes the verdict
# (lab-facts.md): 0x08 dependent mapping; filter bits 0x06: 0x02
# independent, 0x04 address-dependent, 0x06 port-dependent.
classic() {
	run "$LAB" exec "$1" timeout 10 stun "$STUN_IP1"
	echo "stun from $1: exit $status: $output"
}

@test "stun-client agrees with our responder: EIM is port-restricted cone" {
	classic h-eim1
	[ $((status & 0x08)) = 0 ]
	[ $((status & 0x06)) = 6 ]
	[[ "$output" == *"Independent Mapping, Port Dependent Filter"* ]]
}

@test "stun-client agrees with our responder: EDM is symmetric" {
	classic h-edm1
	[ $((status & 0x08)) = 8 ]
	[[ "$output" == *"Primary: Dependent Mapping"* ]]
}

@test "stun-client agrees with our responder: full cone" {
	classic h-full
	[ $((status & 0x08)) = 0 ]
	[ $((status & 0x06)) = 2 ]
	[[ "$output" == *"Independent Filter"* ]]
}

@test "stun-client agrees with our responder: restricted cone" {
	classic h-rcone
	[ $((status & 0x08)) = 0 ]
	[ $((status & 0x06)) = 4 ]
	[[ "$output" == *"Address Restricted"* || "$output" == *"Address Dependent"* ]]
}

natdisc() {
	run "$LAB" exec "$1" timeout 20 turnutils_natdiscovery -m -f "$STUN_IP1"
	echo "natdiscovery from $1: $output"
}

@test "turnutils_natdiscovery agrees: EIM host" {
	natdisc h-eim1
	assert_output --partial 'NAT with Endpoint Independent Mapping!'
	assert_output --partial 'NAT with Address and Port Dependent Filtering!'
}

@test "turnutils_natdiscovery agrees: EDM host" {
	natdisc h-edm1
	assert_output --partial 'NAT with Address and Port Dependent Mapping!'
}

@test "turnutils_natdiscovery agrees: full cone" {
	natdisc h-full
	assert_output --partial 'NAT with Endpoint Independent Mapping!'
	assert_output --partial 'NAT with Endpoint Independent Filtering!'
}

@test "turnutils_natdiscovery agrees: restricted cone" {
	natdisc h-rcone
	assert_output --partial 'NAT with Endpoint Independent Mapping!'
	assert_output --partial 'NAT with Address Dependent Filtering!'
}

@test "the responder kept serving and logged nothing unexpected" {
	kill -USR1 "$(cat "$BATS_FILE_TMPDIR/responder.pid")"
	local i=0
	until grep -q 'received [0-9]*, answered' "$BATS_FILE_TMPDIR/responder.log"; do
		i=$((i + 1)); [ $i -lt 40 ] || break; sleep 0.05
	done
	run grep 'answered' "$BATS_FILE_TMPDIR/responder.log"
	assert_success
	refute_output --partial 'answered 0,'
}
