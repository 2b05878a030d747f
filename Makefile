# cfhookd - Cashfree webhook receiver.  See README.md.
#
#   make            build/cfhookd and build/cfhookctl
#   make test       install missing packages, build, run every test suite
#   make asan       the same tests against an AddressSanitizer+UBSan build
#   make tsan       the same tests against a ThreadSanitizer build
#   make lint       layer rules, banned functions, cppcheck
#   make check      lint, test, asan
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each
#   make bench      throughput, latency, memory and forwarding figures with
#                   their ratios to references measured in the same run
#   make run        install, build, start on conf/dev.conf in the foreground
#   make install    PREFIX=/usr/local DESTDIR=  (make uninstall: the same files)
#   make deb        the Debian package, in $(DEBDIR) (build/deb)
#   make man        check that the manual pages render without a warning

PKGS	 = libmicrohttpd openssl jansson sqlite3 libpq libsystemd
BUILD	?= build
PREFIX	?= /usr/local
SYSCONFDIR ?= /etc
# cfhookd is a daemon only init starts: sbin, as Debian does for daemons.
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
PKGDATADIR ?= $(PREFIX)/share/cfhookd
DOCDIR	?= $(PREFIX)/share/doc/cfhookd
MANDIR	?= $(PREFIX)/share/man
# Where systemd looks: /lib/systemd/system for the distribution's units
# (PREFIX=/usr, the Debian package), /usr/local/lib/systemd/system for the
# administrator's; it searches no other PREFIX, so those go to /etc.
UNITDIR	?= $(strip $(if $(filter /usr,$(PREFIX)),/lib/systemd/system, \
	   $(if $(filter /usr/local,$(PREFIX)),/usr/local/lib/systemd/system, \
	   $(SYSCONFDIR)/systemd/system)))
# Installed binaries are stripped (debug info stays in $(BUILD));
# debian/rules empties this so that dh_strip keeps a -dbgsym package.
INSTALL_STRIP ?= -s
DEBDIR	?= $(BUILD)/deb
VERSION	:= $(shell sed -n \
	   's/^\#define CFHOOK_VERSION[^"]*"\([^"]*\)".*/\1/p' include/version.h)
FUZZ_SECONDS ?= 30
BENCH_SECONDS ?= 5

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# The project's own flags. A user's CFLAGS, CPPFLAGS and LDFLAGS (dpkg's,
# say) are appended after them: they can add, never take away the include
# path, C11 or -Werror.
WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla \
	   -Wconversion -Wsign-conversion -Wcast-qual
BASE	 = -std=c11 -D_GNU_SOURCE -Iinclude -MMD -MP -g -pthread $(WARN) \
	   -fPIE $(PKG_CFLAGS)
HARDEN	 = -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
ASANFL	 = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	   -fno-sanitize-recover=all
TSANFL	 = -O1 -fno-omit-frame-pointer -fsanitize=thread
LDBASE	 = -pie -pthread -Wl,-z,relro,-z,now

ifeq ($(FLAVOUR),asan)
FLAVCFLAGS  = $(ASANFL)
FLAVLDFLAGS = -fsanitize=address,undefined
else ifeq ($(FLAVOUR),tsan)
FLAVCFLAGS  = $(TSANFL)
FLAVLDFLAGS = -fsanitize=thread
else ifeq ($(FLAVOUR),fuzz)
# clang's libFuzzer: the library is instrumented once, each target links it.
# (clang reads the SQL strings of designated initializers, split over
# lines, as a missing comma.)
FLAVCFLAGS  = -O1 -fno-omit-frame-pointer -Wno-string-concatenation \
	      -fsanitize=fuzzer-no-link,address,undefined \
	      -fno-sanitize-recover=all
FLAVLDFLAGS = -fsanitize=fuzzer,address,undefined
else
FLAVCFLAGS  = $(HARDEN)
FLAVLDFLAGS =
endif
ALL_CFLAGS  = $(BASE) $(FLAVCFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(LDBASE) $(FLAVLDFLAGS) $(LDFLAGS)
LDLIBS	 = $(PKG_LIBS)

SRCS	 := $(wildcard src/*.c)
MAINS	 := src/main.c src/ctl.c
LIBSRCS	 := $(filter-out $(MAINS),$(SRCS))
LIBOBJS	 := $(LIBSRCS:src/%.c=$(BUILD)/obj/%.o)
UNITSRCS := $(wildcard tests/unit/test_*.c)
UNITBINS := $(UNITSRCS:tests/unit/%.c=$(BUILD)/tests/%)
# make bench's instruments (tests/bench/): libc and libcrypto only
LGSRCS	 := tests/bench/loadgen.c $(wildcard tests/bench/lg_*.c)
LGOBJS	 := $(LGSRCS:tests/bench/%.c=$(BUILD)/bench/%.o)
BENCHBINS := $(BUILD)/bench/loadgen $(BUILD)/bench/spawnrate \
	     $(BUILD)/bench/consumer
CRYPTO_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)

.PHONY: all test asan tsan tsan-ci lint check fuzz fuzz-targets bench \
	bench-tools run install uninstall deb man clean deps unit

all: $(BUILD)/cfhookd $(BUILD)/cfhookctl

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -Isrc -c -o $@ $<

$(BUILD)/libcfhook.a: $(LIBOBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/cfhookd: $(BUILD)/obj/main.o $(BUILD)/libcfhook.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/cfhookctl: $(BUILD)/obj/ctl.o $(BUILD)/libcfhook.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(BUILD)/libcfhook.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNITBINS)

$(BUILD)/bench/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/bench -c -o $@ $<

$(BUILD)/bench/loadgen: $(LGOBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CRYPTO_LIBS)

$(BUILD)/bench/spawnrate $(BUILD)/bench/consumer: $(BUILD)/bench/%: \
	  $(BUILD)/bench/%.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

bench-tools: $(BENCHBINS)

deps:
	@scripts/install-deps

test: deps
	@$(MAKE) --no-print-directory all unit bench-tools
	@tests/run $(BUILD)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan FLAVOUR=asan all unit \
	  bench-tools
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run build/asan

tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan FLAVOUR=tsan all unit \
	  bench-tools
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  tests/run build/tsan

# CI's share of ThreadSanitizer: every unit test and the end-to-end suites
# that drive the threads (HTTP, writer, forwarder, stop and reload).
TSAN_E2E = tests/e2e/test_http.py tests/e2e/test_dedup.py \
	   tests/e2e/test_lifecycle.py tests/e2e/test_forward.py \
	   tests/e2e/test_replay.py
tsan-ci: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan FLAVOUR=tsan all unit \
	  bench-tools
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  E2E_FILES="$(TSAN_E2E)" tests/run build/tsan

# The checks that keep the code as STYLE.md says: module layers, banned
# functions, cppcheck.
lint:
	@scripts/install-deps --dev
	@scripts/check-layers
	@scripts/check-banned
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Iinclude -Isrc src
	@echo "lint: ok"

check: lint test asan

FUZZSRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZBINS := $(FUZZSRCS:tests/fuzz/%.c=$(BUILD)/%)

# Built with BUILD=build/fuzz FLAVOUR=fuzz CC=clang (make fuzz does that).
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libcfhook.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-targets: $(FUZZBINS)

fuzz:
	@scripts/install-deps --dev
	@$(MAKE) --no-print-directory BUILD=build/fuzz FLAVOUR=fuzz CC=clang \
	  fuzz-targets
	@scripts/fuzz $(FUZZ_SECONDS) $(FUZZSRCS)

bench: deps
	@$(MAKE) --no-print-directory all bench-tools
	@BENCH_SECONDS=$(BENCH_SECONDS) scripts/bench $(BUILD)

run:
	@scripts/install-deps --run
	@$(MAKE) --no-print-directory all
	@scripts/dev-run $(BUILD)

# What `make install` puts where; `make uninstall` removes exactly these.
# Text files name their paths as installed with PREFIX=/usr/local and
# SYSCONFDIR=/etc; REWRITE turns them into this install's (README.md
# describes both layouts and is copied as it is).
DOCFILES = scripts/audit.sql conf/nginx-cfhookd.conf \
	   conf/nginx-cashfree-allow.conf conf/prometheus-cfhookd.rules.yml \
	   conf/prometheus-cfhookd.tests.yml conf/grafana-cfhookd.json
EXAMPLES = scripts/example-hook scripts/example-consumer
MAN5	 = conf/man/cfhookd.conf.5
MAN8	 = conf/man/cfhookd.8 conf/man/cfhookctl.8
UNITS	 = systemd/cfhookd.service systemd/cfhookd.socket
REWRITE	 = sed -e 's|/usr/local/sbin/cfhookd|$(SBINDIR)/cfhookd|g' \
	   -e 's|/usr/local/bin/cfhookctl|$(BINDIR)/cfhookctl|g' \
	   -e 's|/usr/local/share/doc/cfhookd|$(DOCDIR)|g' \
	   -e 's|/usr/local/share/cfhookd|$(PKGDATADIR)|g' \
	   -e 's|/usr/local/lib/systemd/system|$(UNITDIR)|g' \
	   -e 's|/etc/cfhookd|$(SYSCONFDIR)/cfhookd|g'
D	 = $(DESTDIR)

install: all
	install -d $(D)$(BINDIR) $(D)$(SBINDIR) $(D)$(PKGDATADIR) \
	  $(D)$(DOCDIR)/examples $(D)$(MANDIR)/man5 $(D)$(MANDIR)/man8 \
	  $(D)$(UNITDIR) $(D)$(SYSCONFDIR)/cfhookd
	install -m 0755 $(INSTALL_STRIP) $(BUILD)/cfhookd $(D)$(SBINDIR)/
	install -m 0755 $(INSTALL_STRIP) $(BUILD)/cfhookctl $(D)$(BINDIR)/
	install -m 0755 scripts/cfhook-send $(D)$(PKGDATADIR)/
	$(REWRITE) conf/cfhookd.conf > $(D)$(PKGDATADIR)/cfhookd.conf.example
	chmod 0644 $(D)$(PKGDATADIR)/cfhookd.conf.example
	@if [ ! -e $(D)$(SYSCONFDIR)/cfhookd/cfhookd.conf ]; then \
	  echo "installing $(SYSCONFDIR)/cfhookd/cfhookd.conf"; \
	  install -m 0644 $(D)$(PKGDATADIR)/cfhookd.conf.example \
	    $(D)$(SYSCONFDIR)/cfhookd/cfhookd.conf; \
	else echo "keeping existing $(SYSCONFDIR)/cfhookd/cfhookd.conf"; fi
	install -m 0644 README.md $(D)$(DOCDIR)/
	set -e; for f in $(DOCFILES); do \
	  $(REWRITE) $$f > $(D)$(DOCDIR)/$${f##*/}; \
	  chmod 0644 $(D)$(DOCDIR)/$${f##*/}; done
	set -e; for f in $(EXAMPLES); do \
	  $(REWRITE) $$f > $(D)$(DOCDIR)/examples/$${f##*/}; \
	  chmod 0755 $(D)$(DOCDIR)/examples/$${f##*/}; done
	set -e; for f in $(MAN5) $(MAN8) $(UNITS); do \
	  case $$f in *.5) d=$(MANDIR)/man5 ;; *.8) d=$(MANDIR)/man8 ;; \
	  *) d=$(UNITDIR) ;; esac; \
	  $(REWRITE) $$f > $(D)$$d/$${f##*/}; chmod 0644 $(D)$$d/$${f##*/}; done

# Never the configuration or the secret in $(SYSCONFDIR)/cfhookd, nor the
# database: they are the operator's. Shared directories (bin, man8, ...)
# stay; only cfhookd's own are removed, when empty.
uninstall:
	rm -f $(D)$(SBINDIR)/cfhookd $(D)$(BINDIR)/cfhookctl \
	  $(D)$(PKGDATADIR)/cfhook-send $(D)$(PKGDATADIR)/cfhookd.conf.example \
	  $(D)$(DOCDIR)/README.md \
	  $(foreach f,$(DOCFILES),$(D)$(DOCDIR)/$(notdir $(f))) \
	  $(foreach f,$(EXAMPLES),$(D)$(DOCDIR)/examples/$(notdir $(f))) \
	  $(foreach f,$(MAN5),$(D)$(MANDIR)/man5/$(notdir $(f))) \
	  $(foreach f,$(MAN8),$(D)$(MANDIR)/man8/$(notdir $(f))) \
	  $(foreach f,$(UNITS),$(D)$(UNITDIR)/$(notdir $(f)))
	for d in $(D)$(DOCDIR)/examples $(D)$(DOCDIR) $(D)$(PKGDATADIR); do \
	  [ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d; done
	@echo "kept $(SYSCONFDIR)/cfhookd (configuration, secret) and" \
	  "/var/lib/cfhookd (database); run systemctl daemon-reload"

man:
	@set -e; for m in $(MAN5) $(MAN8); do \
	  out=$$(LC_ALL=C.UTF-8 groff -ww -z -mandoc -Tutf8 $$m 2>&1); \
	  if [ -n "$$out" ]; then printf '%s:\n%s\n' $$m "$$out"; exit 1; fi; \
	done; echo "man: $(MAN5) $(MAN8) render without warnings"

# Built from a copy of the tree in $(DEBDIR), so the package build never
# touches this tree (dh's clean, debian/build); the .deb lands in $(DEBDIR).
DEBSRC	 = $(DEBDIR)/cfhookd-$(VERSION)
deb:
	@command -v dpkg-buildpackage >/dev/null || { echo "make deb:" \
	  "dpkg-buildpackage is missing (scripts/install-deps)" >&2; exit 1; }
	rm -rf $(DEBSRC)
	mkdir -p $(DEBSRC)
	tar -cf - --exclude=debian/build --exclude=debian/cfhookd \
	  --exclude=debian/.debhelper --exclude=__pycache__ Makefile README.md \
	  src include conf systemd scripts tests debian | tar -xf - -C $(DEBSRC)
	cd $(DEBSRC) && dpkg-buildpackage -us -uc -b
	rm -rf $(DEBSRC)
	@echo "make deb:" \
	  "$(DEBDIR)/cfhookd_$(VERSION)_$$(dpkg --print-architecture).deb"

clean:
	rm -rf build

-include $(LIBOBJS:.o=.d) $(BUILD)/obj/main.d $(BUILD)/obj/ctl.d \
	 $(UNITBINS:%=%.d) $(LGOBJS:.o=.d) $(BENCHBINS:%=%.d)
