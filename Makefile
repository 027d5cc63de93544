# tcpsteer front door. Every target that builds installs missing Debian packages first (make deps).
BUILD      ?= build
NATIVE_DIR := $(BUILD)/native
SANITIZE_DIR := $(BUILD)/sanitize
WASM_DIR   := $(BUILD)/wasm
MODULE     := $(WASM_DIR)/filter/tcpsteer.wasm
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 10
SANITIZE   ?= address,undefined

# The native trees' CMake options. A change of any variable here (FUZZ_SECONDS=...) reconfigures
# the tree: the flags are kept in a file that is rewritten only when they differ.
NATIVE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
  -DTCPSTEER_WASM_MODULE=$(abspath $(MODULE)) -DTCPSTEER_FUZZ_SECONDS=$(FUZZ_SECONDS)
SANITIZE_FLAGS = $(NATIVE_FLAGS) -DTCPSTEER_SANITIZE=$(SANITIZE) -DTCPSTEER_FUZZ=OFF

SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null || find sdk filter tests bench -name '*.cc' -o -name '*.h')

.PHONY: all deps wasm native profile test test-sanitize bench lint format clean demo demo-up demo-replay kind-up kind-verify kind-down FORCE

all: wasm native

deps:
	@bash scripts/install-deps.sh

$(WASM_DIR)/build.ninja:
	cmake -S . -B $(WASM_DIR) -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi-clang19.cmake -DCMAKE_BUILD_TYPE=Release

wasm: deps $(WASM_DIR)/build.ninja
	cmake --build $(WASM_DIR) -j $(JOBS)
	@echo "built $(MODULE) ($$(stat -c %s $(MODULE)) bytes)"

%/cmake.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(if $(findstring $(SANITIZE_DIR),$@),$(SANITIZE_FLAGS),$(NATIVE_FLAGS))' | cmp -s - $@ || \
	  echo '$(if $(findstring $(SANITIZE_DIR),$@),$(SANITIZE_FLAGS),$(NATIVE_FLAGS))' >$@

$(NATIVE_DIR)/build.ninja: $(NATIVE_DIR)/cmake.flags
	cmake -S . -B $(NATIVE_DIR) $(NATIVE_FLAGS)

$(SANITIZE_DIR)/build.ninja: $(SANITIZE_DIR)/cmake.flags
	cmake -S . -B $(SANITIZE_DIR) $(SANITIZE_FLAGS)

# The native tree builds the module first (its own rule), so `make native` alone is enough.
native: deps $(NATIVE_DIR)/build.ninja
	cmake --build $(NATIVE_DIR) -j $(JOBS)

test: wasm native
	ctest --test-dir $(NATIVE_DIR) --output-on-failure -j $(JOBS)

# The whole suite once more, built with ASan+UBSan (SANITIZE=thread for TSan); the fuzzers already
# run sanitized in `make test`.
test-sanitize: deps $(SANITIZE_DIR)/build.ninja
	cmake --build $(SANITIZE_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(SANITIZE_DIR) --output-on-failure -j $(JOBS) --timeout 900

# The module with its function names kept (build/profile/filter/tcpsteer-profile.wasm), for
# `tcpsteer-host replay --profile`; see bench/README.md.
PROFILE_DIR := $(BUILD)/profile
profile: deps native
	cmake -S . -B $(PROFILE_DIR) -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi-clang19.cmake \
	  -DCMAKE_BUILD_TYPE=Release -DTCPSTEER_WASM_PROFILE=ON
	cmake --build $(PROFILE_DIR) -j $(JOBS)
	@echo "built $(PROFILE_DIR)/filter/tcpsteer-profile.wasm (names kept; not for deployment)"

bench: wasm native
	$(NATIVE_DIR)/bench/core_bench
	$(NATIVE_DIR)/bench/host_bench
	python3 tests/wasm/cost_budget.py $(NATIVE_DIR)/host/tcpsteer-host $(MODULE)
	bash bench/apps_bench.sh $(NATIVE_DIR)/apps/egress-server
	python3 bench/envoy_bench.py $(MODULE) $(NATIVE_DIR)/apps/egress-server $(NATIVE_DIR)/filter
	bash bench/egress_path_bench.sh $(MODULE)

# sdk/, filter/plugin/ and the SDK probe module only compile for wasm32: checked with the wasm database.
WASM_ONLY = $(filter sdk/%.cc filter/plugin/%.cc tests/wasm/sdk_stream_callbacks_probe.cc,$(SOURCES))
LINT_DB := $(BUILD)/lint

# clang-tidy analyses every compile command of a file; the native database has the core three
# times (library, fuzzers): lint_db.py keeps one command per file, and files are checked in parallel.
lint: deps wasm native
	clang-format-19 --dry-run --Werror $(SOURCES)
	python3 scripts/lint_db.py $(NATIVE_DIR)/compile_commands.json $(LINT_DB)/native/compile_commands.json
	python3 scripts/lint_db.py $(WASM_DIR)/compile_commands.json $(LINT_DB)/wasm/compile_commands.json
	printf '%s\n' $(filter-out $(WASM_ONLY),$(filter %.cc,$(SOURCES))) | \
	  xargs -P $(JOBS) -n 4 clang-tidy-19 -p $(LINT_DB)/native --quiet
	printf '%s\n' $(WASM_ONLY) | xargs -P $(JOBS) -n 4 clang-tidy-19 -p $(LINT_DB)/wasm --quiet

format:
	clang-format-19 -i $(SOURCES)

# The local end-to-end run: real sockets, egress1/egress2, real Envoy with the real module.
demo: wasm native
	@BUILD_DIR=$(NATIVE_DIR) bash scripts/demo.sh

# The same stack left running, to try by hand.
demo-up: wasm native
	@BUILD_DIR=$(NATIVE_DIR) bash scripts/demo.sh --up

# The module alone in the host emulator (no sockets): routing of even/odd/IPv6/malformed sources.
demo-replay: wasm native
	@bash scripts/replay-demo.sh $(NATIVE_DIR)/host/tcpsteer-host $(MODULE)

# The demo on kind + Istio (needs Docker, kind, kubectl, istioctl): docs/istio.md. KIND_FLAGS e.g. --port80
# or "--egress gateways" (the egress gateway variant).
kind-up:
	bash scripts/kind-demo.sh up $(KIND_FLAGS)

kind-verify:
	bash scripts/kind-demo.sh verify $(KIND_FLAGS)

kind-down:
	bash scripts/kind-demo.sh down

clean:
	rm -rf $(BUILD)
