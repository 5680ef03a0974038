#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# birthday without NATs: the table of its odds, its command line, and the
# probe engine on loopback, where the "NAT" maps nothing, so the easy side
# finds the hard side's sockets by the same random probing. Probing runs
# in a network namespace of its own (unshare --net): random ports of
# 127.0.0.1 there are nobody's. An independent disco sender
# (tests/tools/discopeer.py, PyNaCl) tries to fool it.

load helpers

DISCOPEER="$PY $TOP/tests/tools/discopeer.py"

setup_file() {
	export KEYS=$BATS_FILE_TMPDIR/keys
	mkdir -p "$KEYS"
	"$TOP/tests/tools/derpcat-keygen" "$KEYS" a b c
}

teardown() {
	bg_stop_all
}

pub() { cat "$KEYS/$1.pub"; }

# isolated SCRIPT: run bash SCRIPT in a new network namespace with only
# loopback up (needs root, as the lab does); its output is the test's.
isolated() {
	[ "$(id -u)" = 0 ] || { echo "isolated probing needs root (unshare --net)" >&2; return 1; }
	unshare --net bash -c 'ip link set lo up && . "$1"' sh "$1"
}

@test "table: the published figures from the formula, at the defaults" {
	run -0 birthday table
	assert_line --index 0 --regexp '^probes +success% +seconds$'
	assert_line --regexp '^174 +49\.94 +1\.7$'
	assert_line --regexp '^256 +63\.86 +2\.6$'
	assert_line --regexp '^1024 +98\.29 +10\.2$'
	assert_line --regexp '^2048 +99\.97 +20\.5$'
}

@test "table --both-hard: about 54,000 probes a side for 50 %, 170,000 (28 minutes) for 99.9 %" {
	run -0 birthday table --both-hard
	assert_line --regexp '^53710 +50\.00 +537\.1$'
	assert_line --regexp '^169554 +99\.90 +1695\.5$'
}

@test "table -j: one object a row, the same numbers; --ports/--space/--rate change them" {
	run -0 birthday table -j
	assert_line '{"mode":"one-hard","ports":256,"space":64512,"rate":100,"probes":2048,"success":0.999709281,"seconds":20.5}'
	run -0 birthday table -j --ports 100 --space 1000 --rate 10
	# 1 - 0.9^22 = 0.90152...
	assert_line --partial '"probes":22,"success":0.901522'
	assert_line --partial '"seconds":2.2}'
}

@test "table: bad input is a usage error, exit 2" {
	run -2 birthday table --ports 0
	assert_output --partial 'bad ports: 0'
	run -2 birthday table --ports 70000 --space 64512
	run -2 birthday table --rate x
	run -2 birthday table extra
	assert_output --partial 'unexpected argument: extra'
	run -2 birthday table --ports 64512
	assert_output --partial 'fewer than the space'
}

@test "--help is the usage on stdout, exit 0; --version; no command is exit 2" {
	run -0 birthday --help
	assert_line --index 0 --partial 'usage: birthday hard | easy -k keyfile'
	run -0 birthday --version
	assert_output --regexp '^birthday [0-9]'
	run -2 birthday
	assert_output --partial 'no command'
	run -2 birthday sideways
	assert_output --partial 'unknown command: sideways'
}

@test "bad input: no key, no peer, a rate above the cap without --force, roles mixed up" {
	run -2 birthday easy --peer-addr 127.0.0.1 "$(pub b)"
	assert_output --partial 'no key'
	run -2 birthday easy -k "$KEYS/a.key" --peer-addr 127.0.0.1
	assert_output --partial 'no peer'
	run -2 birthday easy -k "$KEYS/a.key" --peer-addr 127.0.0.1 --rate 5000 "$(pub b)"
	assert_output --partial 'above 1000 probes a second'
	run -2 birthday easy -k "$KEYS/a.key" --peer-addr 127.0.0.1 --both-hard "$(pub b)"
	run -2 birthday hard -k "$KEYS/a.key" --peer-addr 127.0.0.1:9 -p 5000 "$(pub b)"
	run -2 birthday hard -k "$KEYS/a.key" --peer-addr 127.0.0.1 "$(pub b)"
	assert_output --partial "easy side's ip:port"
	run -2 birthday hard -k "$KEYS/a.key" --peer-addr 127.0.0.1:9 --ports 5000 "$(pub b)"
	run -2 birthday easy -k "$KEYS/a.key" --peer-addr 127.0.0.1 --count 0 "$(pub b)"
	run -2 birthday easy -k "$KEYS/a.key" "$(pub a)" --peer-addr 127.0.0.1
	run -2 birthday easy -k "$KEYS/a.key" --peer-addr 127.0.0.1 "$(pub a)"
	assert_output --partial "own key"
	run -2 birthday easy -k "$KEYS/a.key" --relay http://127.0.0.1:1 --peer-addr 127.0.0.1 "$(pub b)"
}

@test "--both-hard prints its expected cost first" {
	run -1 --separate-stderr timeout 20 unshare --net birthday hard --both-hard \
		-k "$KEYS/a.key" --peer-addr 127.0.0.1 --ports 4 --count 1 "$(pub b)"
	[[ ${stderr_lines[0]} == "birthday: both sides endpoint-dependent: about 53710 probes a side for 50 %, 169554 for 99.9 %: 28 minutes at 100 a second; this run stops after 1 "* ]]
	assert_equal "$output" ''
}

@test "loopback: the easy side finds one of the hard side's sockets; both print the path" {
	s=$BATS_TEST_TMPDIR/run.sh
	cat >"$s" <<-EOF
	birthday hard -v -k "$KEYS/b.key" --ports 256 --count 4096 --rate 1000 \
		--peer-addr 127.0.0.1:40000 "$(pub a)" >"$BATS_TEST_TMPDIR/hard.out" 2>"$BATS_TEST_TMPDIR/hard.log" &
	h=\$!
	timeout 30 birthday easy -v -k "$KEYS/a.key" -p 40000 --count 4096 --rate 1000 \
		--peer-addr 127.0.0.1 "$(pub b)" >"$BATS_TEST_TMPDIR/easy.out" 2>"$BATS_TEST_TMPDIR/easy.log"
	echo easy \$?
	wait \$h
	echo hard \$?
	EOF
	run -0 isolated "$s"
	assert_line 'easy 0'
	assert_line 'hard 0'
	# LOCALPORT REMOTE_IP:PORT RTT_MS PROBES SECONDS
	run cat "$BATS_TEST_TMPDIR/easy.out"
	assert_output --regexp '^40000 127\.0\.0\.1:[0-9]+ [0-9]+\.[0-9]{3} [0-9]+ [0-9]+\.[0-9]{3}$'
	hard_port=$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/hard.out")
	# each side names the other's socket
	run cut -d' ' -f2 "$BATS_TEST_TMPDIR/easy.out"
	assert_output "127.0.0.1:$hard_port"
	run cut -d' ' -f2 "$BATS_TEST_TMPDIR/hard.out"
	assert_output "127.0.0.1:40000"
	# the count is respected: the probes it reports are at most 4096
	[ "$(cut -d' ' -f4 "$BATS_TEST_TMPDIR/easy.out")" -le 4096 ]
}

@test "loopback: -- CMD gets the winning socket on descriptor 3, connected, MESHKIT_FD and MESHKIT_REMOTE set" {
	s=$BATS_TEST_TMPDIR/run.sh
	cat >"$s" <<-EOF
	timeout 30 birthday hard -k "$KEYS/b.key" --ports 256 --count 4096 --rate 1000 \
		--peer-addr 127.0.0.1:40001 "$(pub a)" -- $PY -c '
	import os, socket
	s = socket.socket(fileno=3)
	print(os.environ["MESHKIT_FD"], os.environ["MESHKIT_REMOTE"], s.getsockname()[1], s.getpeername()[1])
	# no other socket came along: the losing ones are closed
	def link(f):
	    try:
	        return os.readlink("/proc/self/fd/" + f)
	    except OSError:
	        return ""  # the descriptor listdir used, closed by now
	print([f for f in os.listdir("/proc/self/fd") if int(f) > 3 and link(f).startswith("socket:")])
	' >"$BATS_TEST_TMPDIR/hard.out" 2>"$BATS_TEST_TMPDIR/hard.log" &
	h=\$!
	timeout 30 birthday easy -k "$KEYS/a.key" -p 40001 --count 4096 --rate 1000 \
		--peer-addr 127.0.0.1 "$(pub b)" >"$BATS_TEST_TMPDIR/easy.out" 2>"$BATS_TEST_TMPDIR/easy.log"
	echo easy \$?
	wait \$h
	echo hard \$?
	EOF
	run -0 isolated "$s"
	assert_line 'easy 0'
	assert_line 'hard 0'
	hard_port=$(cut -d' ' -f2 "$BATS_TEST_TMPDIR/easy.out" | cut -d: -f2)
	run cat "$BATS_TEST_TMPDIR/hard.out"
	assert_line --index 0 "3 127.0.0.1:40001 $hard_port 40001"
	assert_line --index 1 '[]'
}

@test "loopback: forged, replayed and stray disco never win; the count runs out, exit 1" {
	s=$BATS_TEST_TMPDIR/run.sh
	nonce=000102030405060708090a0b0c0d0e0f1011121314151617
	cat >"$s" <<-EOF
	timeout 30 birthday easy -v -k "$KEYS/a.key" -p 40002 --count 600 --rate 200 \
		--peer-addr 127.0.0.1 "$(pub b)" >"$BATS_TEST_TMPDIR/easy.out" 2>"$BATS_TEST_TMPDIR/easy.log" &
	e=\$!
	until grep -q 'probing 127.0.0.1' "$BATS_TEST_TMPDIR/easy.log" 2>/dev/null; do sleep 0.05; done
	# c seals a ping that claims to be b's: it does not open
	$DISCOPEER "$KEYS/c.key" "$(pub a)" 127.0.0.1:40002 forged-ping "$(pub b)" --count 3
	# b's genuine ping, then the same packet again: the replay is dropped
	$DISCOPEER "$KEYS/b.key" "$(pub a)" 127.0.0.1:40002 ping --nonce $nonce --count 2
	# pongs under b's real key to TxIDs this run never made (another run's)
	$DISCOPEER "$KEYS/b.key" "$(pub a)" 127.0.0.1:40002 pong 000000010203040506070809 127.0.0.1:40002 --count 3
	$DISCOPEER "$KEYS/b.key" "$(pub a)" 127.0.0.1:40002 pong 000000000000000000000000 127.0.0.1:40002 --count 3
	# a stray key that is not the peer's
	$DISCOPEER "$KEYS/c.key" "$(pub a)" 127.0.0.1:40002 ping --count 3
	wait \$e
	echo easy \$?
	EOF
	run -0 isolated "$s"
	assert_line 'easy 1'
	run cat "$BATS_TEST_TMPDIR/easy.out"
	assert_output ''
	run cat "$BATS_TEST_TMPDIR/easy.log"
	assert_line --partial 'disco that does not open: dropped'
	assert_line --partial 'replayed disco message: dropped'
	assert_line --partial 'pong with a TxID this run never sent here: dropped'
	assert_line --partial 'no hit after 600 probes'
	refute_line --partial 'both directions open'
}

@test "man page: every long option, a real .Os, existing references, the formula and the limits" {
	run man_checks birthday.1 birthday
	assert_success
	run man_text "$TOP/man/birthday.1"
	assert_output --partial 'P = 1 - (1 - N/S)^k'
	assert_output --partial 'P = 1 - (1 - 1/S^2)^(k^2)'
	assert_output --partial 'type 0x80'
	assert_output --partial 'A rate cap of 1000 probes a second'
}
