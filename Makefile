# SPDX-License-Identifier: MIT
# meshkit: one plain Makefile. Variables (override on the command line):
#   PREFIX DESTDIR BINDIR MANDIR BASHCOMPDIR ZSHCOMPDIR  install locations
#   CC CFLAGS LDFLAGS PKG_CONFIG                         toolchain
#   FUZZ_SECONDS                                          per fuzz target in `make check`
#   V=1                                                   show the commands
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
PKG_CONFIG ?= pkg-config
CC ?= cc
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 4

# Every library through pkg-config (libnatpmp ships no .pc file). Programs
# link the one static lib/ archive and, thanks to --as-needed, only the
# shared libraries their objects use.
PKGS := libsodium libcrypto libssl libmnl ldns miniupnpc jansson libcurl
CFLAGS ?= -O2 -g
MK_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Ilib \
	$(shell $(PKG_CONFIG) --cflags $(PKGS))
MK_LIBS := -Wl,--as-needed $(shell $(PKG_CONFIG) --libs $(PKGS)) -lnatpmp \
	-lpthread -lm

# B: object directory; OUT: where programs land (bin/ for the normal build,
# so PATH=$PWD/bin works without installing).
B ?= build
OUT ?= bin

# One C file per program in bin/; scripts are listed by name.
PROGS := $(sort $(basename $(notdir $(wildcard bin/*.c))))
SCRIPTS := $(notdir $(wildcard bin/meshnode))
LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
MANPAGES := $(wildcard man/*.[1-8])

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all clean install uninstall check unit san fuzz fuzz-build bats \
	bats-san lint bench need-root print-progs
all: $(PROGS:%=$(OUT)/%)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(MK_CFLAGS) $(CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

$(B)/libmeshkit.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUT)/%: $(B)/bin/%.o $(B)/libmeshkit.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libmeshkit.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LIBS)

.PRECIOUS: $(B)/%.o $(B)/bin/%.o $(B)/tests/unit/%.o build/fuzz/lib/%.o

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do echo "  UNIT    $$t"; $$t || exit 1; done

# The sanitizer build: the same code with ASan+UBSan, programs in build/san/bin.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
san:
	$(MAKE) B=build/san OUT=build/san/bin CFLAGS="$(SAN_FLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" all unit

# libFuzzer targets: every lib source compiled again with clang.
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer,address,undefined
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=build/fuzz/%.o)
build/fuzz/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(MK_CFLAGS) -Wno-unknown-warning-option \
		-fsanitize=fuzzer-no-link,address,undefined -O1 -g -c -o $@ $<
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(MK_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(MK_LIBS)
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@test -n "$(FUZZ_BINS)" || { echo "no fuzz target" >&2; exit 1; }
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); c=build/fuzz/corpus/$$n; mkdir -p $$c; \
		echo "  RUNFUZZ $$n ($(FUZZ_SECONDS) s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			$$c tests/fuzz/corpus/$$n >build/fuzz/$$n.log 2>&1 || \
			{ tail -40 build/fuzz/$$n.log; exit 1; }; \
	done

need-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make check needs root: the lab builds network namespaces" >&2; \
		exit 1; fi

lint:
	@for m in $(MANPAGES); do mandoc -T lint -W warning $$m || exit 1; done
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--std=c11 -D_GNU_SOURCE --inline-suppr -Ilib --suppress=missingIncludeSystem \
		lib bin tests/unit tests/fuzz bench

bats: all
	MK_BIN=$(CURDIR)/bin bats --timing tests/bats

# Sanitized programs through a representative part of the suite: every
# program's loopback tests and natclass's lab tests (the whole suite twice
# would not fit CI's budget; the lab selftest exercises no program of ours).
SAN_BATS ?= tests/bats/stunq.bats tests/bats/natclass.bats \
	tests/bats/wgsetup.bats tests/bats/magicdns.bats tests/bats/derpcat.bats \
	tests/bats/punch.bats tests/bats/birthday.bats

bats-san: san
	MK_BIN=$(CURDIR)/build/san/bin MK_RESTART_RUNS=2 \
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		bats --timing $(SAN_BATS)

# bats and bats-san in two lanes at once (tests/check-bats says how).
check: need-root all lint unit san fuzz
	@tests/check-bats

bench: all
	bench/run

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 $(PROGS:%=$(OUT)/%) $(SCRIPTS:%=bin/%) $(DESTDIR)$(BINDIR)
	for m in $(MANPAGES); do s=$${m##*.}; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	install -m 0644 completions/bash/* $(DESTDIR)$(BASHCOMPDIR)/
	install -m 0644 completions/zsh/* $(DESTDIR)$(ZSHCOMPDIR)/

print-progs:
	@echo $(PROGS)

# Exactly what install put there: programs, pages, completions.
uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%) $(SCRIPTS:%=$(DESTDIR)$(BINDIR)/%)
	for m in $(notdir $(MANPAGES)); do s=$${m##*.}; \
		rm -f $(DESTDIR)$(MANDIR)/man$$s/$$m; done
	rm -f $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(notdir $(wildcard completions/bash/*)))
	rm -f $(addprefix $(DESTDIR)$(ZSHCOMPDIR)/,$(notdir $(wildcard completions/zsh/*)))

clean:
	rm -rf build $(PROGS:%=bin/%)

-include $(shell find build -type f -name '*.d' 2>/dev/null)
