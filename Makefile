# A thin wrapper over CMake. `make run` and `make test` are the two commands
# the README gives; both install what they need first.
BUILD      ?= build
TEST_BUILD ?= build/test
JOBS       ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
ARGS       ?=
ifeq ($(CI),true)
WERROR := ON
else
WERROR := OFF
endif

.PHONY: all build run test unit fuzz install uninstall package deps deps-test format clean

all: build

deps:
	@sh packaging/deps.sh build

deps-test:
	@sh packaging/deps.sh test

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

# Unit tests only: no root, no Docker.
unit:
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOOPHOLE_SANITIZE=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

# Builds the libFuzzer drivers with clang and runs each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 30
fuzz:
	CC=clang cmake -S . -B build/fuzz -DLOOPHOLE_FUZZ=ON -DLOOPHOLE_TESTS=ON >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$$//')
	@for f in build/fuzz/fuzz/fuzz_*; do n=$$(basename $$f); mkdir -p build/fuzz/corpus/$$n; \
		echo "== $$n"; $$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus/$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

install: build
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
