# SPDX-License-Identifier: MIT
# Shared by the wgsetup bats files: keys, the restricted PATH, bounded
# waits and the clean-up that leaves no wireguard-go or socket behind.

# A PATH holding only what wgsetup may run: wireguard-go. No ip, no wg.
wg_path_setup() {
	export WGPATH=$BATS_FILE_TMPDIR/path
	mkdir -p "$WGPATH"
	ln -sf "$(command -v wireguard-go)" "$WGPATH/wireguard-go"
}

# wg_keys NAME...: $KEYS/NAME.key and NAME.pub (by wgsetup), and $KEYS/psk.
wg_keys() {
	local n
	export KEYS=$BATS_FILE_TMPDIR/keys
	mkdir -p "$KEYS"
	for n in "$@"; do
		(umask 077; "$MK_BIN/wgsetup" genkey >"$KEYS/$n.key")
		"$MK_BIN/wgsetup" pubkey <"$KEYS/$n.key" >"$KEYS/$n.pub"
	done
	(umask 077; "$MK_BIN/wgsetup" genpsk >"$KEYS/psk")
}

# wait_for SECONDS COMMAND: poll COMMAND (eval'd) until it succeeds.
wait_for() {
	local limit=$1 i=0
	shift
	until eval "$*"; do
		i=$((i + 1))
		if [ "$i" -gt $((limit * 20)) ]; then
			echo "timed out after ${limit}s waiting for: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# Live (not zombie) wireguard-go processes serving interfaces named $1*.
wg_go_pids() {
	local pid
	for pid in $(pgrep -f "^wireguard-go -f $1" || true); do
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] || echo "$pid"
	done
}

# wg_gone IFACE [NAMESPACE]: no link, no socket, no process for IFACE.
wg_gone() {
	local ns=${2:-$NS}
	if ip -n "$ns" link show "$1" >/dev/null 2>&1; then
		echo "$1 still exists in $ns" >&2
		return 1
	fi
	if [ -e "/var/run/wireguard/$1.sock" ]; then
		echo "/var/run/wireguard/$1.sock still exists" >&2
		return 1
	fi
	if [ -n "$(wg_go_pids "$1\$")" ]; then
		echo "wireguard-go for $1 still runs" >&2
		return 1
	fi
}

# Stop whatever wireguard-go our wgsetup started for interfaces named
# PREFIX*, by PID (the names carry this run's PID), and drop their sockets.
wg_cleanup() {
	local p=$1 pid pids i
	pids=$(wg_go_pids "$p")
	for pid in $pids; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $pids; do
		i=0
		while [ -n "$(ps -o stat= -p "$pid" 2>/dev/null | grep -v '^Z')" ]; do
			i=$((i + 1))
			if [ "$i" -gt 100 ]; then
				kill -9 "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.05
		done
	done
	rm -f /var/run/wireguard/"$p"*.sock
}

# A dump with its peer lines sorted: wireguard-go reports peers in Go map
# order, which changes from one get to the next.
dump_sorted() {
	local first
	IFS= read -r first
	printf '%s\n' "$first"
	sort
}

# dump_agrees RUN IFACE: `wgsetup show --dump` equals `wg show dump`,
# through RUN (a command prefix that enters the namespace). Counters move
# while WireGuard retries handshakes, so it takes a moment when wg's dump
# reads the same before and after ours, and compares there.
dump_agrees() {
	local run=$1 ifc=$2 i before ours after
	for i in 1 2 3 4 5 6 7 8 9 10; do
		before=$($run wg show "$ifc" dump | dump_sorted)
		ours=$($run env PATH="$WGPATH" "$MK_BIN/wgsetup" show --dump "$ifc" | dump_sorted)
		after=$($run wg show "$ifc" dump | dump_sorted)
		if [ "$before" = "$after" ]; then
			if [ "$ours" != "$before" ]; then
				diff <(echo "$before") <(echo "$ours") >&2
				return 1
			fi
			return 0
		fi
	done
	echo "wg show $ifc dump never held still" >&2
	return 1
}
