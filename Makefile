# posthorn - top-level Makefile (plain GNU make).
#
#   make              build every program into build/
#   make check        build, then run every test (C unit tests + pytest suite)
#   make check-asan   the same under AddressSanitizer + UBSan
#   make run          start a sandbox instance under run/ (loopback ports)
#   make install      install under $(DESTDIR)$(PREFIX)
#   make uninstall    remove what make install recorded it installed
#   make BDB=no       build without Berkeley DB (hash:/btree: tables)
#   make STATIC_TOOLS=yes  link sendmail and postdrop statically (faster
#                     start, about 20% more messages per second from a
#                     shell loop; see INSTALL for the price)
#
# Sources are found by directory: lib/base/*.c (no mail knowledge),
# lib/mail/*.c, lib/store/*.c (the mail store) and lib/tls/*.c (the TLS
# glue, without OpenSSL) form libposthorn.a; lib/tls/plugin/ is the
# OpenSSL plugin $(B)/libexec/posthorn-tls.so, dlopen(3)ed by tls_load();
# every program directory holds the .c files of one program, with main()
# in main.c; test-*.c files next to a module are its unit tests.

CC       ?= cc
PREFIX   ?= /usr
SYSCONFDIR ?= /etc/posthorn
LIBEXECDIR ?= $(PREFIX)/libexec/posthorn
SBINDIR  ?= $(PREFIX)/sbin
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DESTDIR  ?=
BDB      ?= yes
SAN      ?= no
STATIC_TOOLS ?= no
B        ?= build

OPENSSL_CFLAGS := $(shell pkg-config --cflags openssl 2>/dev/null)
OPENSSL_LIBS   := $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)

WARN     = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
	   -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Ilib/base -Ilib/mail -Ilib/store -Ilib/tls $(OPENSSL_CFLAGS) \
	-DDEF_CONFIG_DIR='"$(SYSCONFDIR)"' -DDEF_DAEMON_DIR='"$(LIBEXECDIR)"' \
	-DDEF_COMMAND_DIR='"$(SBINDIR)"'
# --as-needed: a program loads only the shared libraries it uses (sendmail
# and postdrop start once per message; libcrypto alone costs ~1 ms to load);
# libunbound (lib/mail/dns.c) only by the programs that look up DNS
LIBS     = -Wl,--as-needed -lcdb -lcrypt $(OPENSSL_LIBS) -lunbound
ifeq ($(BDB),yes)
ALL_CFLAGS += -DHAVE_BDB=1
# libdb is dlopen(3)ed by table_db.c when a hash: or btree: table is used
endif
# libnettle (SCRAM-SHA-256) is dlopen(3)ed by passwd.c when first needed:
# nettle-dev's headers are used, -lnettle is not (decision 34)
ifeq ($(SAN),yes)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN     = -fsanitize=address,undefined
endif
LDFLAGS ?=
# Relative relocations packed (DT_RELR, glibc 2.36, binutils 2.38): a
# PIE's .rela.dyn (~18 KiB per daemon, read at every start and so part of
# every process's PSS) shrinks to a few hundred bytes. Only when the
# toolchain takes it.
RELR_LDFLAGS := $(shell printf 'int main(void){return 0;}' | $(CC) -x c - -o /dev/null \
	-Wl,-z,pack-relative-relocs 2>/dev/null && echo -Wl,-z,pack-relative-relocs)
LDFLAGS += $(RELR_LDFLAGS)
# Smaller programs, smaller processes: a daemon's text and read-only data
# are mapped whole (the kernel maps the pages around each fault), and no
# other process maps the same binary, so every byte of them is part of the
# process's PSS. Each function and object in its own section, and the
# linker drops those nothing uses (most of lib/'s objects are used in part
# by any one program); no .eh_frame (C without exceptions or
# cancellation; -g still gives debuggers .debug_frame). Together 25-35%
# off each daemon's text, rodata and unwind tables (docs/bench.md, POP3
# memory). The sanitizers keep their unwind tables.
SIZE_CFLAGS := -ffunction-sections -fdata-sections
ifneq ($(SAN),yes)
SIZE_CFLAGS += -fno-asynchronous-unwind-tables -fno-unwind-tables
endif
ALL_CFLAGS += $(SIZE_CFLAGS)
LDFLAGS += -Wl,--gc-sections
# sendmail and postdrop start once per injected message; linked statically
# they skip the dynamic loader's work (not with the sanitizers)
STATIC_PROGS :=
ifeq ($(STATIC_TOOLS),yes)
ifneq ($(SAN),yes)
STATIC_PROGS := tools/sendmail tools/postdrop
endif
endif

# Program directories. Daemons go to $(B)/libexec, tools/<name>/ to
# $(B)/bin/<name>, tests/bin/<name>/ (helper programs for tests) to $(B)/testbin.
DAEMON_DIRS  := $(patsubst %/main.c,%,$(wildcard master/main.c smtpd/main.c cleanup/main.c \
	pickup/main.c submit/main.c qmgr/main.c bounce/main.c smtp-client/main.c local-delivery/main.c \
	auth/main.c pop3d/main.c imapd/main.c pop3d-login/main.c imapd-login/main.c \
	client-limits/main.c \
	smtp-front/main.c))
TOOL_DIRS    := $(patsubst %/main.c,%,$(wildcard tools/*/main.c))
TESTBIN_DIRS := $(patsubst %/main.c,%,$(wildcard tests/bin/*/main.c))

LIB_SRCS  := $(filter-out lib/base/test-% lib/mail/test-% lib/store/test-% lib/tls/test-%,\
	$(wildcard lib/base/*.c lib/mail/*.c lib/store/*.c lib/tls/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIBA      := $(B)/libposthorn.a
UNIT_SRCS := $(wildcard lib/base/test-*.c lib/mail/test-*.c lib/store/test-*.c lib/tls/test-*.c \
	$(addsuffix /test-*.c,$(DAEMON_DIRS) $(TOOL_DIRS)))
UNIT_BINS := $(foreach t,$(UNIT_SRCS),$(B)/unit/$(notdir $(t:.c=)))

# prog_objs DIR: the object files of one program (no unit tests)
prog_objs = $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(1)/test-%,$(wildcard $(1)/*.c)))

# Fuzz targets (tests/fuzz/fuzz_*.c): built here with driver.c's main()
# to replay their seed corpora (tests/test_fuzz.py, in check and
# check-asan); `make fuzz` builds and runs them for real (tests/fuzz/run.sh).
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(B)/fuzz/%)
FUZZ_SECONDS ?= 60

DAEMON_BINS  := $(foreach d,$(DAEMON_DIRS),$(B)/libexec/$(d))
TOOL_BINS    := $(foreach d,$(TOOL_DIRS),$(B)/bin/$(notdir $(d)))
TESTBIN_BINS := $(foreach d,$(TESTBIN_DIRS),$(B)/testbin/$(notdir $(d)))

.PHONY: all deps check check-asan unit run install uninstall clean test-programs fuzz
TLS_PLUGIN := $(B)/libexec/posthorn-tls.so

all: $(DAEMON_BINS) $(TOOL_BINS) $(TLS_PLUGIN) $(if $(filter tools/sendmail,$(TOOL_DIRS)),$(B)/bin/mailq $(B)/bin/newaliases) \
     $(if $(filter tools/postdrop,$(TOOL_DIRS)),$(B)/libexec/postdrop)

# mailq and newaliases are sendmail under other names
$(B)/bin/mailq $(B)/bin/newaliases: $(B)/bin/sendmail
	ln -sf sendmail $@

# sendmail runs postdrop from daemon_directory (a helper, not a command):
# a copy, not a link, so `posthorn check` as root can make it set-gid
$(B)/libexec/postdrop: $(B)/bin/postdrop
	cp -f $< $@.new && mv -f $@.new $@

test-programs: $(UNIT_BINS) $(TESTBIN_BINS) $(FUZZ_REPLAY_BINS)

FUZZ_OBJS := $(FUZZ_TARGETS:%=$(B)/obj/tests/fuzz/%.o) $(B)/obj/tests/fuzz/driver.o \
	$(B)/obj/tests/fuzz/mem_stream.o
.SECONDARY: $(FUZZ_OBJS)
$(B)/fuzz/%: $(B)/obj/tests/fuzz/%.o $(B)/obj/tests/fuzz/driver.o $(B)/obj/tests/fuzz/mem_stream.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) $(LIBS)

# The OpenSSL plugin: position independent, linked against OpenSSL only;
# -z defs proves it needs no symbol of the program that loads it
$(TLS_PLUGIN): lib/tls/plugin/tls_openssl.c lib/tls/tls_plugin.h lib/tls/tls.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -Wl,-z,defs $(LDSAN) $(LDFLAGS) -o $@.new $< $(OPENSSL_LIBS) \
	  && mv -f $@.new $@

# The objects depend on the flags they were built with: a change of
# CFLAGS, LDFLAGS or of this Makefile's flags rebuilds them (a stamp file
# rewritten only when its text changes), so an old build tree does not
# keep objects made with other flags.
FLAGS_STAMP := $(B)/obj/.flags
FLAGS_NOW := $(CC) $(ALL_CFLAGS) $(LDSAN) $(LDFLAGS)
.PHONY: FORCE
$(FLAGS_STAMP): FORCE
	$(if $(filter-out $(file <$@),$(FLAGS_NOW))$(filter-out $(FLAGS_NOW),$(file <$@)),\
	  $(shell mkdir -p $(dir $@))$(file >$@,$(FLAGS_NOW))@echo "flags changed: objects are rebuilt",@:)

$(B)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBA): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

define prog_rule
$(2): $(call prog_objs,$(1)) $(LIBA)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDSAN) $$(LDFLAGS) $$(if $$(filter $(1),$$(STATIC_PROGS)),-static) -o $$@ $(call prog_objs,$(1)) $(LIBA) $$(LIBS)
endef
$(foreach d,$(DAEMON_DIRS),$(eval $(call prog_rule,$(d),$(B)/libexec/$(d))))
$(foreach d,$(TOOL_DIRS),$(eval $(call prog_rule,$(d),$(B)/bin/$(notdir $(d)))))
$(foreach d,$(TESTBIN_DIRS),$(eval $(call prog_rule,$(d),$(B)/testbin/$(notdir $(d)))))

# A unit test links its own object, the other modules of its directory
# (all but main.o) and the library.
define unit_rule
$(B)/unit/$(notdir $(1:.c=)): $(B)/obj/$(1:.c=.o) $(filter-out %/main.o,$(call prog_objs,$(patsubst %/,%,$(dir $(1))))) $(LIBA)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDSAN) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBA) $$(LIBS)
endef
$(foreach t,$(UNIT_SRCS),$(eval $(call unit_rule,$(t))))

deps:
	@sh tools/install-deps.sh

unit: test-programs
	@tests/run-unit $(B)/unit

check:
	@sh tools/install-deps.sh
	@$(MAKE) --no-print-directory all test-programs
	@B=$(B) BDB=$(BDB) sh tests/run-tests

check-asan:
	@sh tools/install-deps.sh
	@$(MAKE) --no-print-directory B=build-asan SAN=yes CFLAGS='-O1 -g' all test-programs
	@B=build-asan BDB=$(BDB) POSTHORN_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run-tests

# fuzz: every target for FUZZ_SECONDS each, with libFuzzer when clang has
# it, else with driver.c's blind mutation loop (tests/fuzz/README.md)
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

run:
	@sh tools/install-deps.sh
	@$(MAKE) --no-print-directory all
	@POSTHORN_BUILD=$(B) sh tools/sandbox.sh

install: all
	sh tools/install.sh "$(DESTDIR)" "$(PREFIX)" "$(SYSCONFDIR)" "$(LIBEXECDIR)" \
	  "$(SBINDIR)" "$(BINDIR)" "$(MANDIR)" "$(B)"

# uninstall: remove exactly what install recorded (never the configuration,
# the queue or the accounts)
uninstall:
	sh tools/install.sh --uninstall "$(DESTDIR)" "$(PREFIX)" "$(SYSCONFDIR)" "$(LIBEXECDIR)" \
	  "$(SBINDIR)" "$(BINDIR)" "$(MANDIR)" "$(B)"

clean:
	rm -rf build build-asan

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
