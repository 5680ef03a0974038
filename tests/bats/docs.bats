#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Docs follow the code: every program's usage text is its man page's
# SYNOPSIS, and `make install` puts programs, pages and completions in place.

load helpers

# The SYNOPSIS section of a page, rendered, as one line of single spaces.
synopsis() {
	man_text "$1" |
		sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \t\n' '   ' |
		sed 's/^ //; s/ $//'
}

usage_text() {
	"$MK_BIN/$1" --help | tr -s ' \t\n' '   ' | sed 's/^usage: //; s/ $//'
}

@test "stunq: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/stunq.1"
	syn=$output
	run usage_text stunq
	# the usage's second form starts with the program name again
	assert_equal "$output" "$syn"
}

@test "natclass: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/natclass.1"
	syn=$output
	run usage_text natclass
	assert_equal "$output" "$syn"
}

@test "wgsetup: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/wgsetup.8"
	syn=$output
	run usage_text wgsetup
	assert_equal "$output" "$syn"
}

@test "magicdns: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/magicdns.8"
	syn=$output
	run usage_text magicdns
	assert_equal "$output" "$syn"
}

@test "derpcat: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/derpcat.1"
	syn=$output
	run usage_text derpcat
	assert_equal "$output" "$syn"
}

@test "every program has a man page and completions for bash and zsh" {
	for p in $(make -s -C "$TOP" print-progs); do
		ls "$TOP"/man/"$p".[18] >/dev/null
		[ -f "$TOP/completions/bash/$p" ]
		[ -f "$TOP/completions/zsh/_$p" ]
		bash -n "$TOP/completions/bash/$p"
	done
}

@test "make install DESTDIR= PREFIX= installs programs, pages and completions" {
	d=$BATS_TEST_TMPDIR/root
	run make -s -C "$TOP" install DESTDIR="$d" PREFIX=/opt/mk
	assert_success
	[ -x "$d/opt/mk/bin/stunq" ]
	[ -f "$d/opt/mk/share/man/man1/stunq.1" ]
	[ -f "$d/opt/mk/share/man/man5/mesh.conf.5" ]
	[ -f "$d/opt/mk/share/bash-completion/completions/stunq" ]
	[ -f "$d/opt/mk/share/zsh/site-functions/_stunq" ]
	"$d/opt/mk/bin/stunq" --version
}

@test "make uninstall removes everything make install put there" {
	d=$BATS_TEST_TMPDIR/root
	run make -s -C "$TOP" install DESTDIR="$d" PREFIX=/opt/mk
	assert_success
	run make -s -C "$TOP" uninstall DESTDIR="$d" PREFIX=/opt/mk
	assert_success
	run find "$d" -type f
	assert_output ""
}

@test "punch: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/punch.1"
	syn=$output
	run usage_text punch
	assert_equal "$output" "$syn"
}

@test "birthday: usage equals the man page SYNOPSIS" {
	run synopsis "$TOP/man/birthday.1"
	syn=$output
	run usage_text birthday
	assert_equal "$output" "$syn"
}
