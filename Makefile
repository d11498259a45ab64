# Thin wrapper over CMake; see README.md.
#   make deps    install the Debian packages rayc needs (idempotent; needs root or sudo)
#   make build   configure and build into build/
#   make test    deps + build + every test suite (ctest), then the unit suites under ASan/UBSan
#   make demo    deps + build + a local heterogeneous cluster, shown and stopped
#   make bench   deps + build + rayc-bench (one JSON line per figure)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
ifdef CI
CMAKE_FLAGS += -DRAYC_WERROR=ON
endif

.PHONY: all deps build build-asan test test-asan demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRAYC_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j 2
	cd $(ASAN_BUILD) && ctest --output-on-failure -L unit

demo: build
	scripts/demo.sh $(BUILD)/bin

bench:
	@scripts/install-deps.sh --bench
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/bin/rayc-bench $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
