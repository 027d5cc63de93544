# tcpsteer front door. Every target that builds installs missing Debian packages first (make deps).
BUILD      ?= build
NATIVE_DIR := $(BUILD)/native
WASM_DIR   := $(BUILD)/wasm
MODULE     := $(WASM_DIR)/filter/tcpsteer.wasm
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 10

SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null || find sdk filter tests bench -name '*.cc' -o -name '*.h')

.PHONY: all deps wasm native test bench lint format clean demo demo-up demo-replay kind-up kind-verify kind-down

all: wasm native

deps:
	@bash scripts/install-deps.sh

$(WASM_DIR)/build.ninja:
	cmake -S . -B $(WASM_DIR) -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi-clang19.cmake -DCMAKE_BUILD_TYPE=Release

wasm: deps $(WASM_DIR)/build.ninja
	cmake --build $(WASM_DIR) -j $(JOBS)
	@echo "built $(MODULE) ($$(stat -c %s $(MODULE)) bytes)"

$(NATIVE_DIR)/build.ninja:
	cmake -S . -B $(NATIVE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
	  -DTCPSTEER_WASM_MODULE=$(abspath $(MODULE)) -DTCPSTEER_FUZZ_SECONDS=$(FUZZ_SECONDS)

native: deps $(NATIVE_DIR)/build.ninja
	cmake --build $(NATIVE_DIR) -j $(JOBS)

test: wasm native
	ctest --test-dir $(NATIVE_DIR) --output-on-failure -j $(JOBS)

bench: wasm native
	$(NATIVE_DIR)/bench/core_bench
	$(NATIVE_DIR)/bench/host_bench
	bash bench/apps_bench.sh $(NATIVE_DIR)/apps/egress-server
	bash bench/proxy_bench.sh $(NATIVE_DIR) $(MODULE)

# sdk/ and filter/plugin/ only compile for wasm32, so they are checked with the wasm compile database.
WASM_ONLY = $(filter sdk/%.cc filter/plugin/%.cc,$(SOURCES))

lint: deps wasm native
	clang-format-19 --dry-run --Werror $(SOURCES)
	clang-tidy-19 -p $(NATIVE_DIR) --quiet $(filter-out $(WASM_ONLY),$(filter %.cc,$(SOURCES)))
	clang-tidy-19 -p $(WASM_DIR) --quiet $(WASM_ONLY)

format:
	clang-format-19 -i $(SOURCES)

# The local end-to-end run: real sockets, egress1/egress2, tcpsteer-proxy with the real module.
demo: wasm native
	@BUILD_DIR=$(NATIVE_DIR) bash scripts/demo.sh

# The same stack left running, to try by hand.
demo-up: wasm native
	@BUILD_DIR=$(NATIVE_DIR) bash scripts/demo.sh --up

# The module alone in the host emulator (no sockets): routing of even/odd/IPv6/malformed sources.
demo-replay: wasm native
	@bash scripts/replay-demo.sh $(NATIVE_DIR)/host/tcpsteer-host $(MODULE)

# The demo on kind + Istio (needs Docker, kind, kubectl, istioctl): docs/istio.md. KIND_FLAGS e.g. --port80.
kind-up:
	bash scripts/kind-demo.sh up $(KIND_FLAGS)

kind-verify:
	bash scripts/kind-demo.sh verify $(KIND_FLAGS)

kind-down:
	bash scripts/kind-demo.sh down

clean:
	rm -rf $(BUILD)
