#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/qemu/run.sh [bench]: wgsetup against kernel WireGuard, for real.
#
# This machine's kernel has no WireGuard, so boot Debian's own kernel (the
# package linux-image-amd64 names, which ships wireguard.ko) under QEMU's
# software emulation, with a small initramfs in the way of WireGuard's
# netns.sh harness: busybox-static for the shell, the modules veth and
# wireguard with their dependencies, and the real binaries under test with
# their shared libraries: wgsetup, and wg and ip to judge it (wgsetup itself
# runs with an empty PATH). tests/qemu/guest.sh is /init; it prints TAP-like
# "ok - NAME" / "not ok - NAME" lines and "wgsetup-qemu: done" at the end.
# With "bench" it also times wg setconf against wgsetup setconf for 10,000
# peers ("bench NAME SECONDS" lines).
#
# Packages are fetched with `apt-get download` into a cache under build/
# (never installed, never committed): WGSETUP_QEMU_DIR, default
# build/wgsetup-qemu. MK_BIN (default bin/) says which wgsetup to test.
# Needs qemu-system-x86, kmod (depmod, modprobe), cpio, python3.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$TOP/tests/qemu
B=${WGSETUP_QEMU_DIR:-$TOP/build/wgsetup-qemu}
CACHE=$B/cache
MK_BIN=${MK_BIN:-$TOP/bin}
TIMEOUT=${WGSETUP_QEMU_TIMEOUT:-300}
MODE=${1:-test}

die() { echo "tests/qemu/run.sh: $*" >&2; exit 3; }

for t in qemu-system-x86_64 depmod modprobe cpio dpkg-deb /usr/bin/python3 wg ip; do
	command -v "$t" >/dev/null || die "$t not found (tests/deps.d/wgsetup lists the packages)"
done
[ -x "$MK_BIN/wgsetup" ] || die "no $MK_BIN/wgsetup: run make first"

# The kernel package linux-image-amd64 points at, and busybox-static.
fetch() {
	local pkg
	mkdir -p "$CACHE"
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
	[ -n "$pkg" ] || pkg=$(cd "$CACHE" && ls linux-image-*.deb 2>/dev/null |
		sed 's/_.*//' | head -n 1)
	[ -n "$pkg" ] || die "cannot tell which linux-image to fetch (apt-get update?)"
	if ! ls "$CACHE/${pkg}_"*.deb >/dev/null 2>&1; then
		(cd "$CACHE" && apt-get download "$pkg" >/dev/null 2>&1) ||
			die "apt-get download $pkg failed"
	fi
	if ! ls "$CACHE"/busybox-static_*.deb >/dev/null 2>&1; then
		(cd "$CACHE" && apt-get download busybox-static >/dev/null 2>&1) ||
			die "apt-get download busybox-static failed"
	fi
	KDEB=$(ls "$CACHE/${pkg}_"*.deb | head -n 1)
	BDEB=$(ls "$CACHE"/busybox-static_*.deb | head -n 1)
}

# Unpack once per package file (a stamp names the .deb unpacked).
unpack() {
	local deb=$1 dir=$2
	if [ "$(cat "$dir.stamp" 2>/dev/null)" != "$deb" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
		echo "$deb" >"$dir.stamp"
	fi
}

# copy_bin FILE: FILE into the root's /usr/local/bin, with what ldd lists.
copy_bin() {
	local f=$1 lib
	install -m 755 "$f" "$ROOT/usr/local/bin/$(basename "$f")"
	for lib in $(ldd "$f" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'); do
		[ -e "$ROOT$lib" ] && continue
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib"
	done
}

fetch
unpack "$KDEB" "$B/kernel"
unpack "$BDEB" "$B/busybox"
KVER=$(ls "$B/kernel/lib/modules" | head -n 1)
VMLINUZ=$B/kernel/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no kernel image in $KDEB"
[ -f "$B/kernel/lib/modules/$KVER/modules.dep" ] || depmod -b "$B/kernel" "$KVER"

ROOT=$B/root
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,usr/local/bin,modules,proc,sys,dev,tmp,run,etc,lib64}
install -m 755 "$B/busybox/bin/busybox" "$ROOT/bin/busybox"
# Modules in the order modprobe would load them, dependencies first.
modprobe -d "$B/kernel" -S "$KVER" --show-depends -a veth wireguard |
	awk '$1 == "insmod" { print $2 }' | while read -r m; do
		cp "$m" "$ROOT/modules/"
		basename "$m" >>"$ROOT/modules/order"
	done
grep -q '^wireguard\.ko' "$ROOT/modules/order" || die "no wireguard.ko in $KDEB"
copy_bin "$MK_BIN/wgsetup"
copy_bin "$(command -v wg)"
copy_bin "$(command -v ip)"
install -m 755 "$HERE/guest.sh" "$ROOT/init"
/usr/bin/python3 "$HERE/bigconf.py" 10000 1000 >"$ROOT/big.conf"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$B/initrd.gz"

append="console=ttyS0 panic=-1 quiet"
[ "$MODE" = bench ] && append="$append wgsetup.bench=1"
# No KVM here: TCG with the default CPU model (faster than -cpu max).
timeout "$TIMEOUT" qemu-system-x86_64 -m 2048 -smp 2 -nographic -no-reboot \
	-kernel "$VMLINUZ" -initrd "$B/initrd.gz" -append "$append" -nic none \
	</dev/null | tr -d '\r' | tee "$B/console.log" |
	grep -E '^(ok|not ok|bench|#|wgsetup-qemu:) ' || true
grep -q '^wgsetup-qemu: done' "$B/console.log" ||
	die "the guest did not finish (see $B/console.log)"
