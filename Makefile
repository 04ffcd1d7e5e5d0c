# libtdnskrs — build, test, install.
#
#   make            shipping library build/lib/libtdnskrs.so (static Swift runtime), server plugins
#   make test       every test; ends with one line "N passed, N failed"
#   make demo       the main job on 127.0.0.1: tdns-kdc, and a KRS inside named receiving keys it signs with;
#                   SERVER=bind9 (default), knot (the module in knotd) or nsd (the tdnskrs-nsd sidecar)
#   make install    PREFIX=/usr/local DESTDIR= : library, headers, tdnskrs.pc, plugins, programs, man pages
#   make deb        build/deb/*.deb: Debian packages of what `make` built (Sources/Packaging/debian), lintian-checked
#   make deps       the Debian packages the project needs (run as root)
#   make fuzz       FUZZ_RUNS=1000000 : the libFuzzer harnesses over Tests/Fuzz/corpus (not part of `make test`)
#   make examples   build/examples/: the programs of Examples/, built with pkg-config against build/

SHELL       := /bin/bash
PREFIX      ?= /usr/local
DESTDIR     ?=
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include

VERSION     := 0.2.0
SOMAJOR     := 0
BUILD       := build
SHIP_SCRATCH:= .build-ship
SWIFT       ?= swift
CC          ?= cc
CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Werror
VENV        := .venv

LIB_REAL    := $(BUILD)/lib/libtdnskrs.so.$(VERSION)
LIB_SONAME  := libtdnskrs.so.$(SOMAJOR)
DLZ_PLUGIN  := $(BUILD)/lib/dlz_tdnskrs.so
KNOT_PLUGIN := $(BUILD)/lib/mod-tdnskrs.so

DEBIAN_PACKAGES := pkg-config libssl-dev libcjose-dev libjansson-dev libjson-c-dev bind9-dev \
	bind9 bind9-utils bind9-dnsutils knot knot-dnsutils libknot-dev nsd ldnsutils jose \
	valgrind python3-venv g++ \
	debhelper dpkg-dev fakeroot lintian systemd bubblewrap python3-seccomp mandoc doxygen

SWIFT_SOURCES := $(shell find Sources Include -path Sources/Plugins -prune -o \( -name '*.swift' -o -name '*.h' -o -name '*.modulemap' \) -print) Package.swift

.PHONY: all lib plugins bin deps test test-swift demo install install-files deb clean venv examples docs

all: deps-auto lib plugins bin

# --- dependencies -----------------------------------------------------------------------------

# Installs what is missing when run as root; otherwise only reports it.
deps-auto:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing: $$missing"; $(MAKE) --no-print-directory deps; \
	  else echo "missing Debian packages (run 'sudo make deps'): $$missing" >&2; exit 1; fi; \
	fi

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES)

.PHONY: deps-auto

# --- the shipping library ---------------------------------------------------------------------

# Static Swift runtime, NODELETE (hosts dlclose modules on reload), only the C API exported.
# lld, not the default gold: gold leaves the version script's localized Swift metadata symbols
# in .dynsym (as LOCAL entries `nm -D` lists); lld drops them.
lib: $(LIB_REAL)

$(LIB_REAL): $(SWIFT_SOURCES) Sources/TDNSKRSCABI/exports.map
	$(SWIFT) build -c release --product tdnskrs --scratch-path $(SHIP_SCRATCH) \
	  -Xswiftc -static-stdlib -Xswiftc -use-ld=lld \
	  -Xlinker -z -Xlinker nodelete \
	  -Xlinker -soname=$(LIB_SONAME) \
	  -Xlinker --version-script=$(CURDIR)/Sources/TDNSKRSCABI/exports.map
	@mkdir -p $(BUILD)/lib
	cp $(SHIP_SCRATCH)/release/libtdnskrs.so $@
	strip --strip-unneeded $@
	ln -sf libtdnskrs.so.$(VERSION) $(BUILD)/lib/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(BUILD)/lib/libtdnskrs.so

# --- executables ------------------------------------------------------------------------------

# tdns-kdc (the reference KDC), tdns-krs (the standalone KRS) and tdnskrs-nsd (NSD's
# sidecar), release builds with the
# Swift runtime linked in, in their own scratch path.
BIN_SCRATCH := .build-bin
BINARIES    := $(BUILD)/bin/tdns-kdc $(BUILD)/bin/tdns-krs $(BUILD)/bin/tdnskrs-nsd

bin: $(BINARIES)

$(BINARIES) &: $(SWIFT_SOURCES)
	$(SWIFT) build -c release --scratch-path $(BIN_SCRATCH) --static-swift-stdlib --product tdns-kdc
	$(SWIFT) build -c release --scratch-path $(BIN_SCRATCH) --static-swift-stdlib --product tdns-krs
	$(SWIFT) build -c release --scratch-path $(BIN_SCRATCH) --static-swift-stdlib --product tdnskrs-nsd
	@mkdir -p $(BUILD)/bin
	install -m 0755 $(BIN_SCRATCH)/release/tdns-kdc $(BIN_SCRATCH)/release/tdns-krs $(BIN_SCRATCH)/release/tdnskrs-nsd $(BUILD)/bin/
	strip --strip-unneeded $(BINARIES)

# --- server plugins (thin C shims over the public headers) -------------------------------------

# No -z defs for the Knot module: its knotd_* symbols resolve against the knotd executable at load time.
PLUGIN_LDFLAGS := -shared -L$(BUILD)/lib -ltdnskrs -Wl,-rpath,'$$ORIGIN' -Wl,-z,nodelete -lpthread

plugins: $(DLZ_PLUGIN) $(KNOT_PLUGIN)

# Each plugin is one C file of host glue; the status text and the NOTIFY decision come from
# the library (krs_status_text, krs_notify_decide).
PLUGIN_DEPS := $(wildcard Include/tdnskrs/*.h) $(LIB_REAL)

$(DLZ_PLUGIN): Sources/Plugins/bind9-dlz/dlz_tdnskrs.c Sources/Plugins/bind9-dlz/dlz_minimal.h $(PLUGIN_DEPS)
	$(CC) $(CFLAGS) $(WARN) -std=c11 -fPIC -fvisibility=hidden -IInclude -o $@ $< \
	  $(PLUGIN_LDFLAGS) -Wl,-z,defs

$(KNOT_PLUGIN): Sources/Plugins/knot-module/mod_tdnskrs.c $(PLUGIN_DEPS)
	$(CC) $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden -IInclude $$(pkg-config --cflags libknot) -o $@ $< \
	  $(PLUGIN_LDFLAGS) $$(pkg-config --libs libknot)

# --- tdnskrs.pc -------------------------------------------------------------------------------

# pc_file PREFIX,LIBDIR,INCLUDEDIR: Sources/TDNSKRSCABI/tdnskrs.pc.in with those paths, on stdout.
pc_file = sed -e 's|@PREFIX@|$(1)|; s|@LIBDIR@|$(2)|; s|@INCLUDEDIR@|$(3)|; s|@VERSION@|$(VERSION)|' \
	  Sources/TDNSKRSCABI/tdnskrs.pc.in

# The build tree's own tdnskrs.pc (headers in Include/, library in build/lib), so that programs
# build here exactly as they do against an installed libtdnskrs:
#   PKG_CONFIG_PATH=build/pkgconfig cc app.c $(pkg-config --cflags --libs tdnskrs)
BUILD_PC := $(BUILD)/pkgconfig/tdnskrs.pc

$(BUILD_PC): Sources/TDNSKRSCABI/tdnskrs.pc.in Makefile
	@mkdir -p $(@D)
	$(call pc_file,$(CURDIR),$(CURDIR)/$(BUILD)/lib,$(CURDIR)/Include) > $@

# --- examples ---------------------------------------------------------------------------------

# Each Examples/NAME.c becomes build/examples/NAME, compiled the way a C host developer would
# (pkg-config only, no -I/-L of ours), with an rpath so it runs from the build tree.
EXAMPLES := $(patsubst Examples/%.c,$(BUILD)/examples/%,$(wildcard Examples/*.c))
# pkg-config packages an example needs besides tdnskrs.
$(BUILD)/examples/krs_status_example: EXAMPLE_PKGS := json-c

examples: $(EXAMPLES)

$(BUILD)/examples/%: Examples/%.c $(BUILD_PC) $(LIB_REAL) $(wildcard Include/tdnskrs/*.h)
	@mkdir -p $(@D)
	PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/pkgconfig; export PKG_CONFIG_PATH; \
	  $(CC) $(CFLAGS) $(WARN) -std=c11 -o $@ $< $$(pkg-config --cflags --libs tdnskrs $(EXAMPLE_PKGS)) \
	  -Wl,-rpath,$$(pkg-config --variable=libdir tdnskrs)

# --- tests ------------------------------------------------------------------------------------

venv: $(VENV)/.done
$(VENV)/.done: Tests/interop/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r Tests/interop/requirements.txt
	touch $@

test: all examples venv
	@TDNSKRS_BUILD=$(CURDIR)/$(BUILD) PYTHON=$(CURDIR)/$(VENV)/bin/python SWIFT=$(SWIFT) CC=$(CC) \
	  bash Tests/run-all.sh

# SERVER picks the host: bind9 (named + DLZ module), knot (knotd + module) or nsd (NSD + the
# tdnskrs-nsd sidecar). Checked when the Makefile is read, so a typo stops before anything is built.
SERVER ?= bind9
DEMO_SERVERS := bind9 knot nsd
ifneq ($(filter demo,$(MAKECMDGOALS)),)
ifeq ($(filter $(SERVER),$(DEMO_SERVERS)),)
$(error make demo: unknown SERVER=$(SERVER), use one of: $(DEMO_SERVERS))
endif
endif

demo: all
	@TDNSKRS_BUILD=$(CURDIR)/$(BUILD) bash Tests/demo.sh $(SERVER)

# --- fuzzing ----------------------------------------------------------------------------------

# The harnesses of Sources/TDNSFuzzTargets as one libFuzzer binary (release, coverage, ASan) in
# its own scratch path; Tests/Fuzz/run.sh runs each target -runs=$(FUZZ_RUNS) over its corpus
# and prints the executions. FUZZ_MERGE=1 also minimizes what it found into Tests/Fuzz/corpus.
# `make test` does not fuzz: it only replays the corpus (TDNSFuzzTests).
FUZZ_SCRATCH    := .build-fuzz
FUZZ_RUNS       ?= 1000000
FUZZ_TARGETS    ?= dns-message chunk-rdata edns-options json-manifest jws jwe key-file \
                   kdc-chunk-query kdc-enroll-update kdc-confirmation
FUZZ_SANITIZERS ?= fuzzer,address
FUZZ_MERGE      ?= 0
FUZZ_ARGS       ?=

.PHONY: fuzz

fuzz:
	$(SWIFT) build -c release --product tdns-fuzz --scratch-path $(FUZZ_SCRATCH) \
	  -Xswiftc -DLIBFUZZER -Xswiftc -sanitize=$(FUZZ_SANITIZERS)
	@FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_WORK=$(FUZZ_SCRATCH)/work FUZZ_MERGE=$(FUZZ_MERGE) FUZZ_ARGS="$(FUZZ_ARGS)" \
	  bash Tests/Fuzz/run.sh $(FUZZ_SCRATCH)/release/tdns-fuzz $(FUZZ_TARGETS)

# --- install ----------------------------------------------------------------------------------

MANDIR      ?= $(PREFIX)/share/man
# Manual pages, when Sources/Packaging/man/ has them: NAME.SECTION for sections 3, 5 and 8.
MAN_PAGES   := $(wildcard Sources/Packaging/man/*.3 Sources/Packaging/man/*.5 Sources/Packaging/man/*.8)

# --- the API reference ------------------------------------------------------------------------

# HTML from the headers' Doxygen comments (Include/Doxyfile): build/docs/html/index.html. Doxygen's
# warnings are errors there (WARN_AS_ERROR), so an undocumented parameter fails this target.
docs: Include/Doxyfile $(wildcard Include/tdnskrs/*.h)
	@command -v doxygen >/dev/null || { echo "doxygen not found (apt-get install doxygen, or make deps)" >&2; exit 1; }
	@rm -rf $(BUILD)/docs && mkdir -p $(BUILD)/docs
	( cat Include/Doxyfile; echo "OUTPUT_DIRECTORY = $(BUILD)/docs"; echo "PROJECT_NUMBER = $(VERSION)" ) | doxygen -
	@echo "API reference: $(BUILD)/docs/html/index.html"

install: all
	@$(MAKE) --no-print-directory install-files

# What `make all` built, installed without building anything (debian/rules runs this in the
# tree `make deb` assembles, which has build/ but no Swift sources).
install-files:
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/tdnskrs $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINARIES) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(LIB_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf libtdnskrs.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libtdnskrs.so
	install -m 0644 Include/tdnskrs/*.h $(DESTDIR)$(INCLUDEDIR)/tdnskrs/
	$(call pc_file,$(PREFIX),$(LIBDIR),$(INCLUDEDIR)) > $(DESTDIR)$(LIBDIR)/pkgconfig/tdnskrs.pc
	install -d $(DESTDIR)/usr/lib/bind
	install -m 0755 $(DLZ_PLUGIN) $(DESTDIR)/usr/lib/bind/
	install -m 0755 $(LIB_REAL) $(DESTDIR)/usr/lib/bind/
	ln -sf libtdnskrs.so.$(VERSION) $(DESTDIR)/usr/lib/bind/$(LIB_SONAME)
	knotmods=$$(pkg-config --variable=module_instdir knotd); install -d $(DESTDIR)$$knotmods; \
	  install -m 0755 $(KNOT_PLUGIN) $(DESTDIR)$$knotmods/; \
	  install -m 0755 $(LIB_REAL) $(DESTDIR)$$knotmods/; ln -sf libtdnskrs.so.$(VERSION) $(DESTDIR)$$knotmods/$(LIB_SONAME)
	@for page in $(MAN_PAGES); do \
	  section=$${page##*.}; install -d $(DESTDIR)$(MANDIR)/man$$section; \
	  echo "install -m 0644 $$page $(DESTDIR)$(MANDIR)/man$$section/"; \
	  install -m 0644 $$page $(DESTDIR)$(MANDIR)/man$$section/ || exit 1; \
	done

# --- Debian packages --------------------------------------------------------------------------

# Binary-only packages of the release build: build/deb/tdnskrs-VERSION/ gets what
# `make install-files` reads (build/bin, build/lib, Include/, the Makefile, tdnskrs.pc.in,
# Examples/, Sources/Packaging/) and debian/ from Sources/Packaging/debian with the units of
# Sources/Packaging/systemd; dpkg-buildpackage -b splits `make install-files` into packages there
# (nothing is compiled: debian/rules checks that build/ is complete), then lintian checks them.
DEB_DIR     := $(BUILD)/deb
DEB_TREE    := $(DEB_DIR)/tdnskrs-$(VERSION)

deb: all
	@deb_version=$$(dpkg-parsechangelog -l Sources/Packaging/debian/changelog -S Version); \
	if [ "$$deb_version" != "$(VERSION)" ]; then \
	  echo "Sources/Packaging/debian/changelog is at $$deb_version, the Makefile at $(VERSION): add a changelog entry" >&2; exit 1; fi
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_TREE)/$(BUILD) $(DEB_TREE)/Sources/TDNSKRSCABI
	cp -a Makefile Include Examples $(DEB_TREE)/
	cp -a $(BUILD)/bin $(BUILD)/lib $(DEB_TREE)/$(BUILD)/
	cp -a Sources/TDNSKRSCABI/tdnskrs.pc.in $(DEB_TREE)/Sources/TDNSKRSCABI/
	cp -a Sources/Packaging $(DEB_TREE)/Sources/
	cp -a Sources/Packaging/debian $(DEB_TREE)/debian
	for unit in Sources/Packaging/systemd/*.service; do cp $$unit $(DEB_TREE)/debian/$$(basename $$unit); done
	cd $(DEB_TREE) && dpkg-buildpackage -b --no-sign
	lintian --fail-on error,warning --info $(DEB_DIR)/*.changes

clean:
	rm -rf $(BUILD) $(SHIP_SCRATCH) $(BIN_SCRATCH)
