#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# natclass in the lab: every router type gets the right verdict, and the
# reference classifiers (coturn's turnutils_natdiscovery, stun-client's stun)
# agree in the same test. natclass itself runs with an empty PATH, so it
# cannot lean on them.

load helpers

setup_file() {
	lab_up mkn$$
}

teardown_file() {
	lab_down
}

teardown() {
	bg_stop_all
}

# nc HOST ARGS...: natclass in a lab host, with nothing on its PATH
nc() {
	local h=$1; shift
	"$LAB" exec "$h" env -i PATH=/var/empty "$MK_BIN/natclass" --no-portmap "$@"
}

# json FIELD...: print those fields of natclass's JSON on stdin, one a line
json() {
	$PY -c 'import json, sys
o = json.load(sys.stdin)
for k in sys.argv[1:]:
    print(o[k])' "$@"
}

natdisc() {
	"$LAB" exec "$1" timeout 20 turnutils_natdiscovery -m -f "$STUN_IP1" 2>&1
}

classic_status() {
	"$LAB" exec "$1" timeout 10 stun "$STUN_IP1" >/dev/null 2>&1
	echo $?
}

@test "public host: none, open" {
	run --separate-stderr nc pub "$STUN_IP1"
	assert_success
	assert_output none
	run --separate-stderr nc pub --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json nat classic)" "$(printf 'False\nopen')"
	# stun-client says "open" (exit 1)
	assert_equal "$(classic_status pub)" 1
}

@test "EIM router: EIM, port-restricted cone, as natdiscovery and stun say" {
	run --separate-stderr nc h-eim1 "$STUN_IP1"
	assert_success
	assert_output EIM
	run --separate-stderr nc h-eim1 --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json mapping filtering classic)" \
		"$(printf 'endpoint-independent\naddress-and-port-dependent\nport-restricted cone')"
	run natdisc h-eim1
	assert_output --partial 'NAT with Endpoint Independent Mapping!'
	assert_output --partial 'NAT with Address and Port Dependent Filtering!'
	s=$(classic_status h-eim1)
	[ $((s & 0x08)) = 0 ] && [ $((s & 0x06)) = 6 ]
}

@test "EDM router: EDM, symmetric, as natdiscovery and stun say" {
	run --separate-stderr nc h-edm1 "$STUN_IP1"
	assert_success
	assert_output EDM
	run --separate-stderr nc h-edm1 --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json mapping classic varies_by_dest)" \
		"$(printf 'address-and-port-dependent\nsymmetric\nTrue')"
	run natdisc h-edm1
	assert_output --partial 'NAT with Address and Port Dependent Mapping!'
	s=$(classic_status h-edm1)
	[ $((s & 0x08)) = 8 ]
}

@test "double NAT is EIM, mapped to the carrier-grade router's address" {
	run --separate-stderr nc h-dbl --json "$STUN_IP1"
	assert_success
	assert_equal "$(echo "$output" | json verdict)" EIM
	[[ "$(echo "$output" | json mapped)" == "$CGNAT_WAN":* ]]
	run natdisc h-dbl
	assert_output --partial 'NAT with Endpoint Independent Mapping!'
}

@test "full cone: endpoint-independent filtering, as natdiscovery and stun say" {
	run --separate-stderr nc h-full --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json verdict filtering classic)" \
		"$(printf 'EIM\nendpoint-independent\nfull cone')"
	run natdisc h-full
	assert_output --partial 'NAT with Endpoint Independent Filtering!'
	s=$(classic_status h-full)
	[ $((s & 0x06)) = 2 ]
}

@test "restricted cone: address-dependent filtering, as natdiscovery and stun say" {
	run --separate-stderr nc h-rcone --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json verdict filtering classic)" \
		"$(printf 'EIM\naddress-dependent\nrestricted cone')"
	run natdisc h-rcone
	assert_output --partial 'NAT with Address Dependent Filtering!'
	s=$(classic_status h-rcone)
	[ $((s & 0x06)) = 4 ]
}

@test "UDP blocked: 'blocked', exit 1; TCP to the relay's 443 is checked" {
	bg_start tcp443 "$LAB" exec relay $PY "$TOP/tests/lab/probe.py" echo --tcp "$RELAY_IP:443"
	local i=0
	until "$LAB" exec relay ss -ltn | grep -q ":443 "; do
		i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.05
	done
	printf 'relay https://%s\n' "$RELAY_IP" >"$BATS_TEST_TMPDIR/mesh.conf"
	run -1 --separate-stderr nc h-block -c "$BATS_TEST_TMPDIR/mesh.conf" -t 1 "$STUN_IP1"
	assert_output blocked
	run -1 --separate-stderr nc h-block -c "$BATS_TEST_TMPDIR/mesh.conf" -t 1 --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json verdict udp tcp443)" "$(printf 'blocked\nFalse\nTrue')"
	run -1 --separate-stderr nc h-block -t 1 -v "$STUN_IP1"
	assert_output --partial '* UDP: false'
	assert_line '	* Filtering: unknown (no answer)'
	assert_line '	* MappingVariesByDestIP: unknown'
}

@test "against coturn (RFC 5780 on two addresses)" {
	bg_start coturn "$LAB" exec stun turnserver -n -S --no-cli --no-tls --no-dtls \
		--listening-ip "$STUN_IP1" --listening-ip "$STUN_IP2" \
		--listening-port 3482 --alt-listening-port 3483 --log-file stdout \
		--simple-log --no-software-attribute \
		--pidfile "$BATS_TEST_TMPDIR/turn.pid" --userdb "$BATS_TEST_TMPDIR/turndb"
	local i=0
	until "$LAB" exec pub "$MK_BIN/stunq" -q -t 0.2 "$STUN_IP1:3482" >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 40 ] || break
	done
	run --separate-stderr nc h-eim1 --json "$STUN_IP1:3482"
	assert_equal "$(echo "$output" | json verdict mapping_method filtering)" \
		"$(printf 'EIM\nrfc5780\naddress-and-port-dependent')"
	run --separate-stderr nc h-full --json "$STUN_IP1:3482"
	assert_equal "$(echo "$output" | json filtering)" endpoint-independent
	run --separate-stderr nc h-edm1 "$STUN_IP1:3482"
	assert_output EDM
}

@test "two plain servers: mapping by comparison, filtering unknown" {
	bg_start plain1 "$LAB" exec stun "$MK_BIN/stunq" -l "$STUN_IP1:3500"
	bg_start plain2 "$LAB" exec stun2 "$MK_BIN/stunq" -l "$STUN2_IP:3500"
	wait_log plain1 'listening on'
	wait_log plain2 'listening on'
	run --separate-stderr nc h-eim1 --json "$STUN_IP1:3500" "$STUN2_IP:3500"
	assert_equal "$(echo "$output" | json verdict mapping_method filtering)" \
		"$(printf 'EIM\nservers\nunknown')"
	run --separate-stderr nc h-edm1 "$STUN_IP1:3500" "$STUN2_IP:3500"
	assert_output EDM
	# one plain server cannot tell: unknown, not a guess
	run --separate-stderr nc h-eim1 "$STUN_IP1:3500"
	assert_success
	assert_output unknown
}

@test "nearest relay: the one behind the lab's added latency loses" {
	bg_start r1 "$LAB" exec stun2 "$MK_BIN/stunq" -l "$STUN2_IP:3478"
	bg_start slow "$LAB" exec relay $PY "$TOP/tests/tools/udpdelay.py" \
		--listen "$RELAY_IP:3478" --to "$STUN2_IP:3478" --ms 40
	wait_log r1 'listening on'
	wait_log slow '^ready'
	cat >"$BATS_TEST_TMPDIR/derpmap.json" <<-EOF
	{"Regions":{
	 "901":{"RegionID":901,"RegionCode":"slow","RegionName":"Far Away",
	  "Nodes":[{"Name":"901a","RegionID":901,"HostName":"$RELAY_IP"}]},
	 "902":{"RegionID":902,"RegionCode":"near","RegionName":"Next Door",
	  "Nodes":[{"Name":"902a","RegionID":902,"HostName":"relay.invalid","IPv4":"$STUN2_IP"}]}}}
	EOF
	run --separate-stderr nc h-eim1 --derpmap "$BATS_TEST_TMPDIR/derpmap.json" --json "$STUN_IP1"
	assert_success
	echo "$output" | $PY -c '
import json, sys
o = json.load(sys.stdin)
assert o["verdict"] == "EIM", o
assert o["nearest_relay"]["code"] == "near", o["nearest_relay"]
r = {x["code"]: x["rtt_ms"] for x in o["relays"]}
assert r["slow"] >= 80, r
assert r["near"] < r["slow"], r
'
	run --separate-stderr nc h-eim1 --derpmap "$BATS_TEST_TMPDIR/derpmap.json" -v "$STUN_IP1"
	assert_output --partial '* Nearest relay: Next Door'
	assert_output --regexp $'\t\t- near: [0-9.]+ms +\\(Next Door\\)'
}

@test "--json is one valid object whose verdict is the one word" {
	for h in pub h-eim1 h-edm1; do
		w=$(nc "$h" "$STUN_IP1")
		j=$(nc "$h" --json "$STUN_IP1")
		echo "$j" | $PY -m json.tool >/dev/null
		assert_equal "$(echo "$j" | json verdict)" "$w"
	done
}

@test "-v report: the netcheck-style lines" {
	run --separate-stderr nc h-eim1 -v "$STUN_IP1"
	assert_success
	assert_line --partial "* IPv4: yes, $EIM1_WAN:"
	assert_line '	* Mapping: endpoint-independent (by RFC 5780)'
	assert_line '	* PortPreservation: true'
	assert_line '	* Hairpinning: not checked'
	assert_line '	* Classic: port-restricted cone'
}

@test "--hairpin: yes behind the hairpinning router, no behind every other kind, as stun says" {
	run --separate-stderr nc h-hair --hairpin --json "$STUN_IP1"
	assert_success
	assert_equal "$(echo "$output" | json verdict hairpin)" "$(printf 'EIM\nTrue')"
	run --separate-stderr nc h-hair --hairpin -v "$STUN_IP1"
	assert_success
	assert_line '	* Hairpinning: true'
	run --separate-stderr nc h-eim1 --hairpin -v "$STUN_IP1"
	assert_success
	assert_line '	* Hairpinning: false'
	# stun-client's bit 0x10 is "no hairpin"; 0x08 (dependent mapping) is also set when it fails
	s=$(classic_status h-hair)
	[ $((s & 0x18)) = 0 ]
	s=$(classic_status h-eim1)
	[ $((s & 0x18)) = 16 ]
	for h in h-eim1 h-edm1 h-dbl h-full h-rcone h-upnp; do
		run --separate-stderr nc "$h" --hairpin --json "$STUN_IP1"
		assert_success
		assert_equal "$h $(echo "$output" | json hairpin)" "$h False"
	done
}

@test "--fd uses the inherited socket's mapping" {
	run --separate-stderr "$LAB" exec h-eim1 $PY -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40555))
os.dup2(s.fileno(), 7)
os.execv(sys.argv[1], [sys.argv[1], "--no-portmap", "--json", "--fd", "7", sys.argv[2]])
' "$MK_BIN/natclass" "$STUN_IP1"
	assert_success
	assert_equal "$(echo "$output" | json mapped)" "$EIM1_WAN:40555"
}

@test "bad input: silent server, a server answering garbage, a DERP map that is not JSON" {
	run -1 --separate-stderr nc h-eim1 -t 0.5 "$STUN_IP1:9"
	assert_output blocked
	[[ "$stderr" == *"$STUN_IP1:9: no answer"* ]]
	bg_start junk "$LAB" exec stun2 $STUNPEER fake-server --bind "$STUN2_IP:3501" --mode garbage
	wait_log junk '^ready'
	run -3 --separate-stderr nc h-eim1 -t 0.5 "$STUN2_IP:3501"
	assert_output unknown
	[[ "$stderr" == *'replies that are not valid STUN answers'* ]]
	echo 'not json' >"$BATS_TEST_TMPDIR/bad.json"
	run -2 --separate-stderr nc h-eim1 --derpmap "$BATS_TEST_TMPDIR/bad.json" "$STUN_IP1"
	[[ "$stderr" == *"bad.json: not JSON"* ]]
	run -2 --separate-stderr nc h-eim1 "$STUN_IP1:70000"
	[[ "$stderr" == *'bad server'* ]]
}

@test "IPv6: reachability and mapping where the host has a global IPv6 address" {
	bg_start r6 "$LAB" exec stun "$MK_BIN/stunq" -l "[$STUN_IP6_1]:3480"
	wait_log r6 'listening on'
	run --separate-stderr nc pub --json "$STUN_IP1" "[$STUN_IP6_1]:3480"
	assert_success
	echo "$output" | $PY -c '
import json, sys
o = json.load(sys.stdin)
assert o["verdict"] == "none", o
assert o["ipv6"]["reachable"] is True, o
assert o["ipv6"]["mapped"].startswith("['"$PUB_IP6"']:"), o
'
	# no IPv6 behind the EIM router: an answer, not an error
	run --separate-stderr nc h-eim1 --json "$STUN_IP1" "[$STUN_IP6_1]:3480"
	assert_success
	assert_equal "$(echo "$output" | json verdict)" EIM
	echo "$output" | $PY -c '
import json, sys
o = json.load(sys.stdin)
assert o["ipv6"]["reachable"] is False, o
'
}

@test "IPv6-only host behind NAT64: the IPv4 path through 64:ff9b::/96, RFC 5780 tests included" {
	run --separate-stderr nc h-v6only --hairpin --json "[64:ff9b::$STUN_IP1]:3478"
	assert_success
	echo "$output" | NAT64_WAN=$NAT64_WAN $PY -c '
import json, os, sys
o = json.load(sys.stdin)
assert o["verdict"] == "EIM", o
assert o["nat64"] == "64:ff9b::/96", o
assert o["mapped"].startswith(os.environ["NAT64_WAN"] + ":"), o
assert o["local"].startswith("[fd64:64::2]:"), o
assert o["mapping"] == "endpoint-independent" and o["mapping_method"] == "rfc5780", o
assert o["filtering"] == "address-and-port-dependent", o
assert o["hairpin"] is False and o["ipv6"]["reachable"] is False, o
'
	run --separate-stderr nc h-v6only -v "[64:ff9b::$STUN_IP1]:3478"
	assert_line --partial '* NAT64: yes, prefix 64:ff9b::/96'
	assert_line --partial "* IPv4: yes, $NAT64_WAN:"
	# with native IPv4 there is no NAT64 to speak of
	run --separate-stderr nc h-eim1 --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json nat64)" None
}

@test "--lifetime finds the router's UDP timeout, with progress on stderr" {
	"$LAB" exec eim1 sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3
	run --separate-stderr nc h-eim1 --json --lifetime=20 "$STUN_IP1"
	"$LAB" exec eim1 sysctl -qw net.netfilter.nf_conntrack_udp_timeout=30
	assert_success
	[[ "$stderr" == *'lifetime: mapping still open after 2.0 s idle'* ]]
	[[ "$stderr" == *'lifetime: mapping gone after 4.0 s idle'* ]]
	echo "$output" | $PY -c '
import json, sys
o = json.load(sys.stdin)
lt = o["lifetime"]
assert 2.0 <= lt["min_s"] < 3.5 and 2.5 <= lt["max_s"] <= 4.0, lt
assert lt["min_s"] < lt["max_s"], lt
'
	# without an RFC 5780 server there is nothing to measure with
	bg_start plain "$LAB" exec stun2 "$MK_BIN/stunq" -l "$STUN2_IP:3500"
	wait_log plain 'listening on'
	run --separate-stderr nc h-eim1 --json --lifetime=5 "$STUN2_IP:3500"
	assert_success
	[[ "$stderr" == *'lifetime: needs an RFC 5780 server'* ]]
	assert_equal "$(echo "$output" | json lifetime)" None
}

@test "a server that ignores CHANGE-REQUEST makes the filtering unknown, and the report says why" {
	# It answers the change requests from its primary address, which the
	# EIM router (filtering address-and-port-dependent) lets in: taken at
	# its word it made this endpoint-independent, "full cone".
	bg_start liar "$LAB" exec stun $STUNPEER fake-server --bind "$STUN_IP1:3520" \
		--mode ignore-change --alt "$STUN_IP2"
	wait_log liar '^ready'
	run --separate-stderr nc h-eim1 --json "$STUN_IP1:3520"
	assert_success
	echo "$output" | $PY -c '
import json, sys
o = json.load(sys.stdin)
assert o["verdict"] == "EIM" and o["mapping_method"] == "rfc5780", o
assert o["filtering"] == "unknown", o
assert o["classic"] == "unknown", o
assert o["filtering_note"].startswith("inconclusive: a change-IP-and-port request was answered from '"$STUN_IP1"':3520"), o
'
	[[ "$stderr" == *'filtering inconclusive: '* ]]
	run --separate-stderr nc h-eim1 -v "$STUN_IP1:3520"
	assert_success
	assert_line --regexp $'^\t\\* Filtering: unknown \\(inconclusive: a change-IP-and-port request was answered from .* not .*; RFC 5780 server '
	# the honest responder on the same host still gets its answer
	run --separate-stderr nc h-eim1 --json "$STUN_IP1"
	assert_equal "$(echo "$output" | json filtering filtering_note)" \
		"$(printf 'address-and-port-dependent\nNone')"
}

@test "an OTHER-ADDRESS on loopback or, from a public server, on a private network is never probed" {
	# A listener on the host's own loopback, where a hostile server's
	# OTHER-ADDRESS points (both the alternate address's ports natclass
	# would use: the primary's and the one named).
	bg_start lo "$LAB" exec h-eim1 $PY -c '
import select, socket
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 3521))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", 3522))
print("ready", flush=True)
while True:
    for s in select.select([a, b], [], [])[0]:
        d, src = s.recvfrom(4096)
        print("got %d bytes from %s" % (len(d), src), flush=True)
'
	wait_log lo '^ready'
	bg_start hostile "$LAB" exec stun $STUNPEER fake-server --bind "$STUN_IP1:3521" \
		--mode other --other 127.0.0.1:3522
	wait_log hostile '^ready'
	run --separate-stderr nc h-eim1 --json "$STUN_IP1:3521"
	assert_success
	[[ "$stderr" == *"OTHER-ADDRESS 127.0.0.1:3522 not probed: loopback address"* ]]
	assert_equal "$(echo "$output" | json filtering mapping_method)" "$(printf 'unknown\nNone')"
	# what the listener heard, after natclass is done: nothing
	run cat "$BATS_TEST_TMPDIR/lo.log"
	assert_output ready
	bg_start hostile2 "$LAB" exec stun $STUNPEER fake-server --bind "$STUN_IP1:3523" \
		--mode other --other 192.168.1.1:3478
	wait_log hostile2 '^ready'
	run --separate-stderr nc h-eim1 --json "$STUN_IP1:3523"
	assert_success
	[[ "$stderr" == *"OTHER-ADDRESS 192.168.1.1:3478 not probed: private address named by a public server"* ]]
}

@test "-v: no blank field; -vv and -j -v: progress on stderr" {
	# a relay that does not answer: its latency is "none", not blank
	cat >"$BATS_TEST_TMPDIR/derpmap.json" <<-EOF
	{"Regions":{
	 "903":{"RegionID":903,"RegionCode":"dead","RegionName":"Nowhere",
	  "Nodes":[{"Name":"903a","RegionID":903,"HostName":"relay.invalid","IPv4":"$STUN2_IP","STUNPort":3599}]}}}
	EOF
	bg_start plain1 "$LAB" exec stun2 "$MK_BIN/stunq" -l "$STUN2_IP:3500"
	wait_log plain1 'listening on'
	run --separate-stderr nc h-eim1 -v -t 1 --derpmap "$BATS_TEST_TMPDIR/derpmap.json" "$STUN2_IP:3500"
	assert_success
	echo "$output"
	# every "* Name: value" line has a value
	# (the relay list's heading excepted: its lines follow it)
	blank=$(printf '%s\n' "$output" | grep -v $'^\t\\* Relay latency:$' |
		grep -E $'^\t\\* [A-Za-z0-9 ]+:[[:space:]]*$' || true)
	assert_equal "$blank" ""
	assert_line '	* MappingVariesByDestIP: unknown'
	assert_line '	* Filtering: unknown (no RFC 5780 server)'
	assert_line --regexp '^		- dead: none +\(Nowhere\)$'
	assert_equal "$stderr" "natclass: dead: no answer"
	# -vv: progress on stderr, the same report on stdout
	run --separate-stderr nc h-eim1 -vv "$STUN_IP1"
	assert_success
	assert_line '	* Classic: port-restricted cone'
	[[ "$stderr" == *"natclass: asking 1 servers and 0 relays"* ]]
	[[ "$stderr" == *"natclass: $STUN_IP1: mapped $EIM1_WAN:"* ]]
	[[ "$stderr" == *"natclass: behaviour discovery with $STUN_IP1"* ]]
	[[ "$stderr" == *"natclass: filtering tests: "* ]]
	# -j -v: the JSON on stdout, progress on stderr
	run --separate-stderr nc h-eim1 -j -v "$STUN_IP1"
	assert_success
	assert_equal "$(echo "$output" | json verdict classic)" "$(printf 'EIM\nport-restricted cone')"
	[[ "$stderr" == *"natclass: behaviour discovery with $STUN_IP1"* ]]
}

@test "natclass(1): every option, a real .Os and SEE ALSO, examples that keep their quotes and run" {
	run man_checks natclass.1 natclass
	assert_success
	# the DERP map example, as the page renders it, in the lab
	bg_start r1 "$LAB" exec stun2 "$MK_BIN/stunq" -l "$STUN2_IP:3478"
	wait_log r1 'listening on'
	cat >"$BATS_TEST_TMPDIR/derp.json" <<-EOF
	{"Regions":{
	 "902":{"RegionID":902,"RegionCode":"near","RegionName":"Next Door",
	  "Nodes":[{"Name":"902a","RegionID":902,"HostName":"relay.invalid","IPv4":"$STUN2_IP"}]},
	 "903":{"RegionID":903,"RegionCode":"dead","RegionName":"Nowhere",
	  "Nodes":[{"Name":"903a","RegionID":903,"HostName":"relay.invalid","IPv4":"$STUN2_IP","STUNPort":3599}]}}}
	EOF
	ex=$(man_text "$TOP/man/natclass.1" |
		sed -n '/^[[:space:]]*\$ natclass --json --derpmap derp.json |$/,/sort -n$/p' |
		sed 's/^[[:space:]]*\$ //')
	[ -n "$ex" ]
	echo "$ex"
	cd "$BATS_TEST_TMPDIR"
	run --separate-stderr "$LAB" exec h-eim1 env PATH="$MK_BIN:$PATH" bash -o pipefail -c \
		"natclass() { command natclass --no-portmap -t 1 \"\$@\" $STUN_IP1; }; $ex"
	assert_success
	assert_output --regexp '^[0-9.]+ near$'
	# the one-word example keeps its quotes
	ex=$(man_text "$TOP/man/natclass.1" | sed -n 's/^[[:space:]]*\$ \(\[ "\$(natclass)".*\)$/\1/p')
	assert_equal "$ex" '[ "$(natclass)" = EIM ] && echo "easy NAT"'
}

@test "offline: name look-ups are bounded by -t, and natclass says why it has no server" {
	# A resolver that never answers made each look-up block 5 s, one name
	# after another (15 s for the built-in list). The bound (2.5 s for
	# -t 1) is a margin for a loaded machine, not a speed test.
	run -3 --separate-stderr offline "$MK_BIN/natclass" --no-portmap -t 1 stun.example.net stun2.example.net
	echo "took $(cat "$BATS_TEST_TMPDIR/elapsed") ms"
	[ "$(cat "$BATS_TEST_TMPDIR/elapsed")" -lt 2500 ]
	assert_output ''
	assert_equal "$stderr" "$(printf '%s\n' 'natclass: stun.example.net: name lookup timed out' \
		'natclass: stun2.example.net: name lookup timed out' 'natclass: no server to ask')"
	# a malformed server is still bad input, at once
	run -2 --separate-stderr offline "$MK_BIN/natclass" --no-portmap '[::1'
	assert_equal "${stderr_lines[0]}" 'natclass: bad server: [::1'
}
