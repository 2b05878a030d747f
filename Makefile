# cfhookd - Cashfree webhook receiver.  See README.md.
#
#   make            build/cfhookd and build/cfhookctl
#   make test       install missing packages, build, run every test suite
#   make asan       the same tests against an AddressSanitizer+UBSan build
#   make check      test, asan, banned-function grep, cppcheck
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each
#   make bench      throughput, latency, memory and forwarding figures with
#                   their ratios to references measured in the same run
#   make run        install, build, start on conf/dev.conf in the foreground
#   make install    PREFIX=/usr/local DESTDIR=

PKGS	 = libmicrohttpd openssl jansson sqlite3 libsystemd
BUILD	?= build
PREFIX	?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR	?= /lib/systemd/system
FUZZ_SECONDS ?= 30
BENCH_SECONDS ?= 5

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla
BASE	 = -std=c11 -D_GNU_SOURCE -Iinclude -MMD -MP -g -pthread $(WARN) \
	   -fPIE $(PKG_CFLAGS)
HARDEN	 = -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
ASANFL	 = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	   -fno-sanitize-recover=all

ifeq ($(FLAVOUR),asan)
CFLAGS	?= $(BASE) $(ASANFL)
LDFLAGS	?= -pie -pthread -fsanitize=address,undefined -Wl,-z,relro,-z,now
else
CFLAGS	?= $(BASE) $(HARDEN)
LDFLAGS	?= -pie -pthread -Wl,-z,relro,-z,now
endif
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

.PHONY: all test asan check fuzz bench bench-tools run install clean deps unit

all: $(BUILD)/cfhookd $(BUILD)/cfhookctl

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -c -o $@ $<

$(BUILD)/libcfhook.a: $(LIBOBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/cfhookd: $(BUILD)/obj/main.o $(BUILD)/libcfhook.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/cfhookctl: $(BUILD)/obj/ctl.o $(BUILD)/libcfhook.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(BUILD)/libcfhook.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNITBINS)

$(BUILD)/bench/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/bench -c -o $@ $<

$(BUILD)/bench/loadgen: $(LGOBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(CRYPTO_LIBS)

$(BUILD)/bench/spawnrate $(BUILD)/bench/consumer: $(BUILD)/bench/%: \
	  $(BUILD)/bench/%.o
	$(CC) $(LDFLAGS) -o $@ $^

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

check: test asan
	@scripts/install-deps --dev
	@scripts/check-banned
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Iinclude src

FUZZSRCS := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@scripts/install-deps --dev
	@scripts/fuzz $(FUZZ_SECONDS) $(FUZZSRCS)

bench: deps
	@$(MAKE) --no-print-directory all bench-tools
	@BENCH_SECONDS=$(BENCH_SECONDS) scripts/bench $(BUILD)

run:
	@scripts/install-deps --run
	@$(MAKE) --no-print-directory all
	@scripts/dev-run $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/cfhookd \
	  $(DESTDIR)$(SYSCONFDIR)/cfhookd $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/cfhookd $(BUILD)/cfhookctl scripts/cfhook-send \
	  $(DESTDIR)$(PREFIX)/bin/
	sed -e 's#/usr/local#$(PREFIX)#g' conf/cfhookd.conf \
	  > $(DESTDIR)$(PREFIX)/share/cfhookd/cfhookd.conf.example
	chmod 0644 $(DESTDIR)$(PREFIX)/share/cfhookd/cfhookd.conf.example
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/cfhookd/cfhookd.conf ]; then \
	  install -m 0644 $(DESTDIR)$(PREFIX)/share/cfhookd/cfhookd.conf.example \
	    $(DESTDIR)$(SYSCONFDIR)/cfhookd/cfhookd.conf; \
	else echo "keeping existing $(SYSCONFDIR)/cfhookd/cfhookd.conf"; fi
	install -m 0755 scripts/example-hook scripts/example-consumer \
	  $(DESTDIR)$(PREFIX)/share/cfhookd/
	install -m 0644 scripts/audit.sql conf/nginx-cfhookd.conf \
	  conf/nginx-cashfree-allow.conf README.md $(DESTDIR)$(PREFIX)/share/cfhookd/
	for u in cfhookd.service cfhookd.socket; do \
	  sed -e 's#/usr/local#$(PREFIX)#g' -e 's#/etc/cfhookd#$(SYSCONFDIR)/cfhookd#g' \
	    systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done

clean:
	rm -rf build

-include $(LIBOBJS:.o=.d) $(BUILD)/obj/main.d $(BUILD)/obj/ctl.d \
	 $(UNITBINS:%=%.d) $(LGOBJS:.o=.d) $(BENCHBINS:%=%.d)
