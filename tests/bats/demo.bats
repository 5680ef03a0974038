#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The README's first command, examples/demo, as a user runs it: it builds
# its own lab (a prefix of its own), shows stunq, natclass and derpcat at
# work, and leaves nothing behind.

load helpers

@test "examples/demo: stunq per router, natclass verdicts, a line through the relay; nothing left" {
	run timeout 300 "$TOP/examples/demo"
	assert_success
	# EIM: one mapping for three destinations; EDM: three
	eim=$(sed -n '/== h-eim1/,/==/p' <<<"$output" | grep -Eo '198\.18\.1\.1:[0-9]+' | sort -u | wc -l)
	edm=$(sed -n '/== h-edm1/,/==/p' <<<"$output" | grep -Eo '198\.18\.1\.3:[0-9]+' | sort -u | wc -l)
	assert_equal "$eim" 1
	assert_equal "$edm" 3
	assert_line --regexp '^ +h-edm1 +EDM +symmetric +false$'
	assert_line --regexp '^ +h-full +EIM +full cone +false$'
	assert_line --regexp '^ +h-hair +EIM +port-restricted cone +true$'
	assert_line --regexp '^ +h-block +blocked +UDP blocked +-$'
	assert_line '   h-edm1 got: hello from behind a UDP block'
	# behind the UDP block: stunq fails (3), natclass answers "blocked" (1)
	assert_line --partial '   (exit 3: no server answered'
	assert_line '   blocked'
	assert_line --partial '   (exit 1: natclass'
	[ -z "$(ip netns list | grep '^mkdemo')" ]
}
