#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# lib/disco has no program yet (punch will carry it); its unit test
# (tests/unit/test_disco.c) seals and opens protocols.md's §3.3 packet byte
# for byte. Here the same vector is recomputed without libsodium, by a
# pure-Python X25519/XSalsa20/Poly1305, and with PyNaCl: three
# implementations agreeing on the bytes the unit test holds the C code to.

@test "the disco packet vector: pure Python and PyNaCl agree with the bytes test_disco checks" {
	run /usr/bin/python3 "$BATS_TEST_DIRNAME/../tools/disco-vector.py"
	[ "$status" -eq 0 ]
	[[ $output == *"pure python: ok"* ]]
	[[ $output == *"pynacl: ok"* ]]
	want=$(sed -n '/EXPECT_PACKET = (/,/)/p' "$BATS_TEST_DIRNAME/../tools/disco-vector.py" |
		grep -o '"[0-9a-f]*"' | tr -d '"\n')
	grep -q "$want" <(tr -d ' \t\n"' <"$BATS_TEST_DIRNAME/../unit/test_disco.c")
}
