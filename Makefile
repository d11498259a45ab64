# Thin wrapper over CMake; see README.md.
#   make deps    install the Debian packages rayc needs (idempotent; needs root or sudo)
#   make build   configure and build into build/
#   make test    deps + build + every test suite (ctest), then the unit suites under ASan/UBSan,
#                then each libFuzzer harness for RAYC_FUZZ_SECONDS (20) (make test-fuzz alone)
#   make fuzz    deps + the libFuzzer harnesses (clang, build-fuzz/), each run FUZZ_SECONDS (300)
#   make demo    deps + build + a local heterogeneous cluster, shown and stopped
#   make bench   deps + build + rayc-bench (one JSON line per figure)
#   make install build + install into PREFIX (/usr/local; DESTDIR honoured): daemons and CLI,
#                librayc (shared and static), rayc.h, rayc.pc (pkg-config), the CMake package
#                (find_package(rayc)) and the Python package for Debian's /usr/bin/python3
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
RAYC_FUZZ_SECONDS ?= 20
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
ifdef CI
CMAKE_FLAGS += -DRAYC_WERROR=ON
endif

.PHONY: all deps build build-asan build-fuzz test test-asan test-fuzz fuzz demo bench install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRAYC_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Only the harnesses and the libraries they use are built (target fuzz_all).
build-fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRAYC_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all

test: build build-asan build-fuzz
	cd $(BUILD) && ctest --output-on-failure -j 2
	cd $(ASAN_BUILD) && ctest --output-on-failure -L unit
	tests/fuzz/run.sh $(FUZZ_BUILD) $(RAYC_FUZZ_SECONDS)

test-fuzz: build-fuzz
	tests/fuzz/run.sh $(FUZZ_BUILD) $(RAYC_FUZZ_SECONDS)

fuzz: build-fuzz
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: build
	scripts/demo.sh $(BUILD)/bin

bench:
	@scripts/install-deps.sh --bench
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/bin/rayc-bench $(BENCH_ARGS)

PREFIX ?= /usr/local
# Into the running system as root: ldconfig, so that programs find the new librayc at once.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix $(PREFIX)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
