# SPDX-License-Identifier: MIT
bats_require_minimum_version 1.5.0
# Shared by the bats files: where the programs are, background processes
# that are always reaped, and bounded waits (never a bare sleep).
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
MK_BIN=${MK_BIN:-$TOP/bin}
PATH=$MK_BIN:$PATH
PY=/usr/bin/python3
STUNPEER="$PY $TOP/tests/tools/stunpeer.py"
LAB=$TOP/tests/lab/lab.sh
export MK_BIN PATH

# bg_start NAME CMD...: run CMD in the background, stderr+stdout to
# $BATS_TEST_TMPDIR/NAME.log, pid remembered for bg_stop_all.
bg_start() {
	local name=$1; shift
	"$@" >"$BATS_TEST_TMPDIR/$name.log" 2>&1 &
	echo $! >"$BATS_TEST_TMPDIR/$name.pid"
	echo "$! $name" >>"$BATS_TEST_TMPDIR/.pids"
}

bg_pid() { cat "$BATS_TEST_TMPDIR/$1.pid"; }
bg_log() { cat "$BATS_TEST_TMPDIR/$1.log"; }

# Stop only what this test started, by PID; wait so nothing outlives it.
# A sanitizer report in any of their logs fails the test (sanitized builds
# report leaks and errors at exit, after the test's own assertions).
# open_dir: a new directory that others can reach. A secret must be put
# there to draw the "world accessible" warning: the test's own tmpdir sits
# in a 0700 one, so nobody else can get at what is inside it. Removed by
# bg_stop_all, which every teardown calls.
open_dir() {
	local d
	d=$(mktemp -d /tmp/mk-open.XXXXXX)
	chmod 755 "$d"
	echo "$d" >>"$BATS_TEST_TMPDIR/.open_dirs"
	echo "$d"
}

bg_stop_all() {
	local p name bad=0 d
	if [ -f "$BATS_TEST_TMPDIR/.open_dirs" ]; then
		while read -r d; do
			case $d in /tmp/mk-open.*) rm -rf "$d" ;; esac
		done <"$BATS_TEST_TMPDIR/.open_dirs"
		rm -f "$BATS_TEST_TMPDIR/.open_dirs"
	fi
	[ -f "$BATS_TEST_TMPDIR/.pids" ] || return 0
	while read -r p name; do
		kill "$p" 2>/dev/null || true
	done <"$BATS_TEST_TMPDIR/.pids"
	while read -r p name; do
		wait "$p" 2>/dev/null || true
		if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
		    "$BATS_TEST_TMPDIR/$name.log" 2>/dev/null; then
			echo "sanitizer report from $name:" >&2
			cat "$BATS_TEST_TMPDIR/$name.log" >&2
			bad=1
		fi
	done <"$BATS_TEST_TMPDIR/.pids"
	rm -f "$BATS_TEST_TMPDIR/.pids"
	return $bad
}

# wait_log NAME REGEX [SECONDS]: poll the log until REGEX shows (bounded).
wait_log() {
	local name=$1 re=$2 limit=${3:-5} i=0
	while ! grep -Eq -- "$re" "$BATS_TEST_TMPDIR/$name.log" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "timed out waiting for /$re/ in $name.log:" >&2
			cat "$BATS_TEST_TMPDIR/$name.log" >&2
			return 1
		fi
		sleep 0.05
	done
}

# The port a responder printed in its "listening on ADDR:PORT" line.
listen_port() {
	sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' \
		"$BATS_TEST_TMPDIR/$1.log" | head -n 1
}

# start_responder NAME ADDR [ARGS...]: stunq -l on ADDR, wait until ready,
# set PORT to the port it bound.
start_responder() {
	local name=$1 addr=$2; shift 2
	bg_start "$name" stunq -l "$addr" "$@"
	wait_log "$name" 'listening on'
	PORT=$(listen_port "$name")
}

# lab_up PREFIX: bring up the lab under a unique prefix, export its
# addresses, and start the RFC 5780 responder (stunq -l --alt) on the STUN
# host; returns once it answers. For setup_file; pair with lab_down.
lab_up() {
	[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; return 1; }
	export LAB_PREFIX=$1
	eval "$("$LAB" up)"
	export $("$LAB" env | sed -n 's/^export //p' | cut -d= -f1)
	"$LAB" exec stun "$MK_BIN/stunq" -l "$STUN_IP1" --alt "$STUN_IP2" \
		>"$BATS_FILE_TMPDIR/responder.log" 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/responder.pid"
	local i=0
	until "$LAB" exec pub "$MK_BIN/stunq" -q -t 0.2 "$STUN_IP1" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 25 ] || { cat "$BATS_FILE_TMPDIR/responder.log" >&2; return 1; }
	done
}

# lab_down: stop the responder by its PID and remove the lab.
lab_down() {
	local p
	p=$(cat "$BATS_FILE_TMPDIR/responder.pid" 2>/dev/null) &&
		{ kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
	"$LAB" down
}

# offline CMD...: run CMD in a new network and mount namespace whose only
# resolver (127.0.0.1:53, through a resolv.conf bound over /etc/resolv.conf
# there) takes queries and never answers, as an offline network does. Both
# namespaces, and the resolver, end with the command. CMD's own run time,
# in ms, goes to $BATS_TEST_TMPDIR/elapsed.
offline() {
	local d=$BATS_TEST_TMPDIR
	printf 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n' >"$d/resolv.conf"
	cat >"$d/offline.sh" <<-'EOF'
	d=$1; shift
	mount --bind "$d/resolv.conf" /etc/resolv.conf || exit 99
	ip link set lo up || exit 99
	# a log of an earlier call in this test says "ready" already
	rm -f "$d/dns.log"
	python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    s.recvfrom(4096)
' >"$d/dns.log" &
	dns=$!
	trap 'kill $dns' EXIT
	i=0
	until grep -q ready "$d/dns.log"; do
		i=$((i + 1)); [ $i -lt 200 ] || exit 99; sleep 0.05
	done
	t0=$(date +%s%3N)
	rc=0
	"$@" || rc=$?
	echo $(($(date +%s%3N) - t0)) >"$d/elapsed"
	exit $rc
	EOF
	env -u STUNQ_SERVERS MESHKIT_CONF=/nonexistent \
		unshare --net --mount sh "$d/offline.sh" "$d" "$@"
}

# lab_relay_start: derpcat -l on the lab's relay host for a whole file:
# TLS on 443 with a self-signed certificate kept in $BATS_FILE_TMPDIR/state
# (the same key and pin when started again), STUN on 3478, on every address
# of the host; its log is $BATS_FILE_TMPDIR/relay.log. Exports PIN and
# RELAY. lab_relay_stop ends it.
lab_relay_start() {
	local d=$BATS_FILE_TMPDIR i=0
	"$LAB" exec relay "$MK_BIN/derpcat" -l :443 --state "$d/state" \
		--hostname "$RELAY_IP" -v >"$d/relay.log" 2>&1 &
	echo $! >"$d/relay.pid"
	until grep -q 'listening on' "$d/relay.log"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$d/relay.log" >&2; return 1; }
		sleep 0.05
	done
	PIN=$(sed -n 's/.*certificate pin \(sha256-raw:[0-9a-f]\{64\}\).*/\1/p' "$d/relay.log")
	export PIN RELAY=https://$RELAY_IP
}

lab_relay_stop() {
	local p
	p=$(cat "$BATS_FILE_TMPDIR/relay.pid" 2>/dev/null) &&
		{ kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
	return 0
}

# man_text PAGE: the page rendered as plain text. mandoc marks bold and
# underline by overstriking (X, backspace, X); sed drops each such pair,
# as col -b would (col is not on a fresh Debian).
man_text() {
	mandoc -T ascii "$1" | sed 's/.\x08//g'
}

# man_checks PAGE PROG: the page names every long option of PROG's source,
# has a non-empty .Os, refers only to pages that exist, and keeps its
# examples' quotes (no .Dl with a quote in it: mdoc drops them).
man_checks() {
	local page=$TOP/man/$1 src=$TOP/bin/$2.c o x
	for o in $(sed -n '/longopts\[\] = {/,/NULL, 0, NULL, 0/p' "$src" |
	    grep -o '{ "[a-z-]*"' | cut -d'"' -f2); do
		grep -q -- "Fl \\\\-$o\\b" "$page" || { echo "$1: no --$o"; return 1; }
	done
	grep -q '^\.Os [^ ]' "$page" || { echo "$1: empty .Os"; return 1; }
	for x in $(sed -n 's/^\.Xr \([a-z.]*\) \([0-9]\).*/\1.\2/p' "$page"); do
		[ -f "$TOP/man/$x" ] || { echo "$1: refers to $x, which does not exist"; return 1; }
	done
	! grep -n '^\.Dl .*["'"'"']' "$page"
}

# replied ROUTER A B: the lab router's conntrack holds a UDP flow between
# addresses A and B (both IPv4 or both IPv6) that has seen a reply: packets
# crossed it both ways. (Not ASSURED: the kernel gives UDP that only after
# 2 s of traffic.) For punch-lab.bats and punch-node.bats.
replied() {
	local ct fam=ipv4
	[[ $2 != *:* ]] || fam=ipv6
	ct=$("$LAB" exec "$1" conntrack -L -f "$fam" -p udp 2>&1)
	grep -F "=$2 " <<<"$ct" | grep -F "=$3 " | grep -vq UNREPLIED || {
		echo "no replied flow $2 <-> $3 on $1:" >&2
		echo "$ct" >&2
		return 1
	}
}
