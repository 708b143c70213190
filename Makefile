# Front door: `make demo` trains a small GPT on the bundled Bible and prints a sample;
# `make test` runs every test. Both install what they need first (Debian packages, as root).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps build demo demo-llama test test-asan bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

demo-llama: build
	@bash scripts/llama_demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLOOM_SANITIZE=ON -DLOOM_WERROR=ON >/dev/null
	cmake --build build-asan -j $(JOBS) --target loom_unit_tests  # the sanitizer run is the unit tests only
	cd build-asan && ctest --output-on-failure -L unit -j $(JOBS)

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
