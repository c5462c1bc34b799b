# CAVRA Recovery -- thin wrapper over CMake and scripts/.
#
#   make            same as `make build`
#   make build      install missing Debian packages, configure and build ./build
#   make run        build, start PostgreSQL (./var/pg), migrate, start the three
#                   services and the gateway on http://127.0.0.1:8000/ (Ctrl-C stops)
#   make test       unit + integration + e2e tests under ASan/UBSan against a
#                   throwaway PostgreSQL
#   make compose-test  run docker/docker-compose.yml for real with podman and
#                   drive the whole loop through the gateway (scripts/compose_test.sh)
#   make bench      benchmarks (scripts/bench.sh)
#   make fuzz       libFuzzer targets (clang) for FUZZ_SECONDS each (default
#                   60) in ./build-fuzz; crashes in build-fuzz/artifacts/
#   make docs       regenerate docs/reference (REST/RPC reference, OpenAPI)
#                   from the method registry with build/tools/cavra-docs
#   make format     clang-format -i over the C sources
#   make clean      remove the build folders

SHELL := /bin/bash
.DEFAULT_GOAL := build
FORMAT_DIRS := lib services gateway tools tests bench

# `build` is also a folder: without .PHONY make would call it up to date.
.PHONY: build run test compose-test bench fuzz format clean docs

build:
	bash scripts/deps.sh
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j2

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

compose-test:
	bash scripts/compose_test.sh

bench:
	@if [ -f scripts/bench.sh ]; then bash scripts/bench.sh; \
	else echo "make bench: no benchmarks yet (scripts/bench.sh is missing)"; fi

FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

docs:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j2 --target cavra-docs
	build/tools/cavra-docs write docs

format:
	@dirs=$$(for d in $(FORMAT_DIRS); do [ -d "$$d" ] && echo "$$d"; done); \
	if [ -n "$$dirs" ]; then \
		find $$dirs -type f \( -name '*.c' -o -name '*.h' \) -print0 | \
			xargs -0 -r clang-format -i; \
	fi

clean:
	rm -rf build build-asan build-fuzz
