# A thin wrapper over CMake. `make run` and `make test` are the two commands
# the README gives; both install what they need first. `make install` only
# installs what `make` built: make && sudo make install.
BUILD      ?= build
TEST_BUILD ?= build/test
JOBS       ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
ARGS       ?=
ifeq ($(CI),true)
WERROR := ON
else
WERROR := OFF
endif
# Homebrew's openssl@3 is keg-only: its pkg-config files are not on the
# default path (the web feature's TLS and CA need libssl and libcrypto).
ifeq ($(shell uname -s),Darwin)
BREW_OPENSSL := $(shell brew --prefix openssl@3 2>/dev/null)
ifneq ($(BREW_OPENSSL),)
export PKG_CONFIG_PATH := $(BREW_OPENSSL)/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
endif
endif

.PHONY: all build run test unit fuzz fuzz-replay lint tidy format-check install uninstall package \
	deps deps-test deps-fuzz deps-lint format clean bench

all: build

deps:
	@sh packaging/deps.sh build

deps-test:
	@sh packaging/deps.sh test

deps-fuzz:
	@sh packaging/deps.sh fuzz

deps-lint:
	@command -v $(CLANG_FORMAT) >/dev/null && command -v $(CLANG_TIDY) >/dev/null || \
		sh packaging/deps.sh lint

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOPHOLE_WERROR=$(WERROR) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Runs the daemon in the foreground against the local Docker engine, through
# sudo only when not already root. Extra flags: make run ARGS="--log-level debug".
run: build
	@if [ "$$(id -u)" = 0 ]; then exec $(BUILD)/bin/loopholed $(ARGS); \
	else exec sudo $(BUILD)/bin/loopholed $(ARGS); fi

# Builds with ASan+UBSan and runs every test: unit tests, then the integration
# tests against a real Docker engine (started here when none answers).
test: deps-test
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOOPHOLE_SANITIZE=ON \
		-DLOOPHOLE_WERROR=$(WERROR) >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	@bash tests/run.sh $(TEST_BUILD)

# The benchmark suite (root, a Docker engine): a Release build measured
# against the peers people use instead, written to bench/RESULTS.md and
# bench/results/ (plots). BENCH_ARGS="--only proxy,dns" picks benchmarks.
# Not a test: no figure fails it. `make test` runs its smoke version.
bench: deps-test
	@bash bench/run $(BENCH_ARGS)

# Unit tests only: no root, no Docker.
unit:
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOOPHOLE_SANITIZE=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

# The libFuzzer drivers (tests/fuzz/, clang): built in build/fuzz, every seed
# and regression replayed once, then each driver runs for FUZZ_SECONDS (by
# default the 240 s budget shared out, at most 20 s each; CI uses that).
# `make fuzz FUZZ_SECONDS=600` runs longer; FUZZ_DRIVERS="fuzz_control"
# picks drivers. The corpus each run grows stays in build/fuzz/fuzz/corpus/.
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?=
fuzz: fuzz-replay
	@bash tests/fuzz/run.sh fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-replay: deps-fuzz
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOPHOLE_FUZZ=ON \
		-DLOOPHOLE_TESTS=ON -DLOOPHOLE_WERROR=$(WERROR) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	@bash tests/fuzz/run.sh replay $(FUZZ_BUILD)

# Static checks: every tracked .c/.h formatted as .clang-format says, and
# clang-tidy (.clang-tidy) over the production sources through the compile
# database of a clang build in build/lint.
CLANG_FORMAT ?= clang-format
CLANG_TIDY   ?= clang-tidy
LINT_BUILD   ?= build/lint
lint: format-check tidy

format-check: deps-lint
	$(CLANG_FORMAT) --dry-run -Werror $$(git ls-files '*.c' '*.h')

tidy: deps-lint
	CC=clang cmake -S . -B $(LINT_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOOPHOLE_TESTS=OFF \
		-DCLANG_TIDY_EXE="$$(command -v $(CLANG_TIDY))" >/dev/null
	cmake --build $(LINT_BUILD) --target tidy

# Installs what `make` built, and nothing else: no dependencies, no build
# (Homebrew refuses to run as root, and a build as root leaves root-owned
# files behind). So: make && sudo make install.
install:
	@[ -f $(BUILD)/cmake_install.cmake ] && [ -x $(BUILD)/bin/loopholed ] && [ -x $(BUILD)/bin/loophole ] || \
		{ echo "make install: nothing built in $(BUILD)/; run make first (without sudo), then sudo make install" >&2; \
		  exit 1; }
	cmake --install $(BUILD)

uninstall:
	cmake --build $(BUILD) --target uninstall

# A Debian package (CPack) in build/package.
package: deps
	cmake -S . -B build/package -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DLOOPHOLE_TESTS=OFF >/dev/null
	cmake --build build/package -j $(JOBS)
	cd build/package && cpack -G DEB

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
