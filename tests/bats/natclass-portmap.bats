#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# natclass and the gateway's port-mapping services, in the lab: the upnp
# router runs miniupnpd (UPnP-IGD, NAT-PMP and PCP; `lab.sh miniupnpd
# start`), the eim1 router runs none. Each service is found; a mapping
# through each lets a datagram in from the fake internet (pub), shows in
# miniupnpd's lease file (PROTO:EXTPORT:INTERNAL_IP:PORT:EXPIRY:DESC), and
# is gone once natclass exits, unless --keep. Nothing sleeps: every wait
# polls with a bound.

load helpers

setup_file() {
	lab_up mkpm$$
	"$LAB" miniupnpd start
}

teardown_file() {
	lab_down
}

teardown() {
	bg_stop_all
	stop_echos
	# a test that stopped the gateway's services starts them again
	if [ -f "$BATS_TEST_TMPDIR/upnp-stopped" ]; then
		"$LAB" miniupnpd start
	fi
}

# nc HOST ARGS...: natclass in a lab host, with nothing on its PATH
nc() {
	local h=$1; shift
	"$LAB" exec "$h" env -i PATH=/var/empty "$MK_BIN/natclass" "$@"
}

# json_portmap FIELD...: those fields of the "portmap" object on stdin
json_portmap() {
	$PY -c 'import json, sys
o = json.load(sys.stdin)["portmap"]
print(" ".join(json.dumps(o[k]) for k in sys.argv[1:]))' "$@"
}

# A UDP echo server on h-upnp's PORT (tests/lab/probe.py), stopped by teardown.
start_echo() {
	local pidf
	pidf=$(mktemp "$BATS_TEST_TMPDIR/echo.XXXXXX")
	"$LAB" exec h-upnp $PY "$TOP/tests/lab/probe.py" echo --pidfile "$pidf" \
		--lifetime 60 --bind "$H_UPNP_IP:$1" </dev/null >/dev/null 3>&-
	[ -s "$pidf" ]
}

stop_echos() {
	local f
	for f in "$BATS_TEST_TMPDIR"/echo.*; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	return 0
}

# inbound ADDR: a datagram from pub to ADDR is let in (the echo answers).
inbound() {
	"$LAB" exec pub $PY "$TOP/tests/lab/probe.py" map --timeout "${2:-3}" "$1" >/dev/null
}

# lease PORT: miniupnpd's lease line for internal PORT of h-upnp, if any.
lease() {
	grep -E "^UDP:[0-9]+:$H_UPNP_IP:$1:" "$UPNP_LEASE_FILE" 2>/dev/null
}

no_lease() {
	! lease "$1" >/dev/null
}

# Run "$@" until it succeeds, up to $1 tenths of a second.
within() {
	local n=$1
	shift
	until "$@"; do
		[ "$n" -gt 0 ] || return 1
		n=$((n - 1))
		sleep 0.1
	done
}

# map NAME PORT ARGS...: natclass --map PORT ARGS... in the background on
# h-upnp; sets EXT to the "ip:port" it prints. Every step execs the next,
# so the PID bg_start keeps is natclass's own.
map() {
	local name=$1 port=$2
	shift 2
	bg_start "$name" "$LAB" exec h-upnp env -i PATH=/var/empty \
		"$MK_BIN/natclass" --map "$port" "$@"
	wait_log "$name" '^[0-9.]+:[0-9]+$' 10
	EXT=$(grep -E '^[0-9.]+:[0-9]+$' "$BATS_TEST_TMPDIR/$name.log")
}

# stop NAME: SIGTERM natclass and expect exit 0.
stop() {
	local pid
	pid=$(bg_pid "$1")
	kill -TERM "$pid"
	wait "$pid"
}

# The whole round for one service: closed, mapped and open, closed again.
roundtrip() {
	local via=$1 port=$2 desc=$3
	start_echo "$port"
	run ! inbound "$UPNP_WAN:$port" 1
	map nat "$port" --via "$via"
	assert_equal "${EXT%:*}" "$UPNP_WAN"
	run lease "$port"
	assert_success
	assert_output --regexp "^UDP:${EXT#*:}:$H_UPNP_IP:$port:[0-9]+:$desc"
	inbound "$EXT"
	stop nat
	within 30 no_lease "$port"
	run ! inbound "$EXT" 1
}

@test "miniupnpd router: -v lists UPnP, NAT-PMP and PCP" {
	run --separate-stderr nc h-upnp -v --no-stun
	assert_success
	assert_line "	* PortMapping: UPnP, NAT-PMP, PCP"
}

@test "miniupnpd router: --json has each service and the external address each gives" {
	run --separate-stderr nc h-upnp --json --no-stun
	assert_success
	assert_equal "$(echo "$output" | json_portmap upnp natpmp pcp gateway)" \
		"true true true \"$UPNP_LAN\""
	assert_equal "$(echo "$output" | json_portmap upnp_external natpmp_external pcp_external)" \
		"\"$UPNP_WAN\" \"$UPNP_WAN\" \"$UPNP_WAN\""
	# The probe's own PCP mapping (to learn the address) is deleted.
	within 30 no_lease '[0-9]+'
}

@test "a full run probes the gateway beside the STUN tests" {
	run --separate-stderr nc h-upnp --json "$STUN_IP1"
	assert_success
	echo "$output" | $PY -c '
import json, sys
o = json.load(sys.stdin)
assert o["verdict"] == "EIM", o
p = o["portmap"]
assert p["upnp"] and p["natpmp"] and p["pcp"], p
assert p["natpmp_external"] == "'"$UPNP_WAN"'", p
'
	run --separate-stderr nc h-upnp -v "$STUN_IP1"
	assert_line "	* PortMapping: UPnP, NAT-PMP, PCP"
}

@test "plain EIM router: no port-mapping service" {
	run --separate-stderr nc h-eim1 -v --no-stun
	assert_success
	# a report field is never blank
	assert_line '	* PortMapping: none'
	run --separate-stderr nc h-eim1 --json --no-stun
	assert_success
	assert_equal "$(echo "$output" | json_portmap upnp natpmp pcp gateway)" \
		"false false false \"$EIM1_LAN\""
	assert_equal "$(echo "$output" | json_portmap upnp_external natpmp_external pcp_external)" \
		"null null null"
}

@test "--map --via upnp: open to pub, in the lease file, gone after exit" {
	roundtrip upnp 41001 meshkit
}

@test "--map --via natpmp: open to pub, in the lease file, gone after exit" {
	roundtrip natpmp 41002 'NAT-PMP 41002 udp'
}

@test "--map --via pcp: open to pub, in the lease file, gone after exit" {
	roundtrip pcp 41003 'PCP MAP [0-9a-f]{24}'
}

@test "--map without --via takes NAT-PMP first, as Tailscale does" {
	map nat 41004
	run lease 41004
	assert_output --regexp ':NAT-PMP 41004 udp$'
	stop nat
	within 30 no_lease 41004
}

@test "--map --keep leaves the mapping (then the test deletes it)" {
	map nat 41005 --via natpmp --keep
	stop nat
	lease 41005
	# natpmpc (libnatpmp's client) deletes it from the same host.
	"$LAB" exec h-upnp natpmpc -g "$UPNP_LAN" -a "${EXT#*:}" 41005 udp 0 >/dev/null
	within 30 no_lease 41005

	map nat 41006 --via upnp --keep
	stop nat
	lease 41006
	"$LAB" exec h-upnp upnpc -i -u "$UPNP_URL" -d "${EXT#*:}" UDP >/dev/null
	within 30 no_lease 41006
}

# expiry PORT: the expiry time in PORT's lease line.
expiry() {
	lease "$1" | cut -d: -f5
}

@test "--lifetime-map: renewed at half the lifetime, kept past it" {
	local first
	# miniupnpd grants NAT-PMP short lifetimes as asked (PCP: 120 s at least).
	map nat 41007 --via natpmp --lifetime-map 4
	first=$(expiry 41007)
	[ -n "$first" ]
	within 100 eval '[ "$(expiry 41007)" -gt "$first" ]'
	within 100 eval '[ "$(expiry 41007)" -gt "$((first + 2))" ]'
	lease 41007
	stop nat
	within 30 no_lease 41007
}

@test "no service: --map is one error line and exit 3" {
	run --separate-stderr nc h-eim1 --map 41008
	assert_failure 3
	assert_output ''
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^natclass: '
	run --separate-stderr nc h-eim1 --map 41008 --via upnp
	assert_failure 3
	assert_equal "${#stderr_lines[@]}" 1
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() {
	local st
	read -r -a st </proc/"$1"/stat
	echo $((st[13] + st[14]))
}

@test "--map: the renewer sleeps in its loop between renewals, using no CPU" {
	local pid before after first hz
	# NAT-PMP for 4 s: a renewal every 2 s, so the loop wakes meanwhile
	map nat 41009 --via natpmp --lifetime-map 4
	pid=$(bg_pid nat)
	first=$(expiry 41009)
	before=$(cpu_ticks "$pid")
	sleep 3
	after=$(cpu_ticks "$pid")
	kill -0 "$pid"
	# it did renew while we watched
	[ "$(expiry 41009)" -gt "$first" ]
	hz=$(getconf CLK_TCK)
	echo "CPU while renewing: $((after - before)) ticks of 1/$hz s in 3 s" >&3
	# a spinning loop burns ~3 s here; allow 0.1 s
	[ $((after - before)) -le $((hz / 10)) ]
	stop nat
	within 30 no_lease 41009
}

@test "--map: renewals that fail are retried until the mapping expires, then exit 3" {
	local pid rc=0
	map nat 41010 --via natpmp --lifetime-map 4
	pid=$(bg_pid nat)
	touch "$BATS_TEST_TMPDIR/upnp-stopped"
	"$LAB" miniupnpd stop
	# renewal at 2 s fails, again 5 s later, after the 4 s lifetime
	within 150 eval '! kill -0 "$pid" 2>/dev/null'
	wait "$pid" || rc=$?
	[ "$rc" = 3 ]
	run bg_log nat
	assert_line --regexp '^natclass: renewal failed: '
	assert_line 'natclass: mapping expired'
	[ "$(grep -c 'renewal failed' "$BATS_TEST_TMPDIR/nat.log")" = 2 ]
	"$LAB" miniupnpd start
	rm "$BATS_TEST_TMPDIR/upnp-stopped"
}
