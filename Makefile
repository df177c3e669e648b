# ringfence: the two commands a new machine needs are `make demo` and `make check`.
# Both install missing Debian packages first (scripts/install-deps), then build with Meson.

BUILD  ?= build/release
CHECK  ?= build/check
FUZZ   ?= build/fuzz

.PHONY: all deps build check demo bench fuzz format clean help deb

all: build

help:
	@echo "make demo    install deps, build, run the demo"
	@echo "make check   install deps, build with ASan+UBSan, run every test"
	@echo "make bench   build optimised, run the benchmarks (prints figures)"
	@echo "make fuzz    build the libFuzzer targets with clang (build/fuzz)"
	@echo "make deb     build the Debian packages (build/deb-out: server, agent, tools)"
	@echo "make clean   remove build/"

deps:
	@scripts/install-deps

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --buildtype=release
	ninja -C $(BUILD)

check: deps
	@[ -f $(CHECK)/build.ninja ] || meson setup $(CHECK) --buildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true
	ninja -C $(CHECK)
	scripts/run-tests $(CHECK)

demo: build
	scripts/demo $(BUILD) && $(BUILD)/src/cli/ringfence demo $(DEMO_ARGS)

bench: build
	meson test -C $(BUILD) --benchmark --verbose --num-processes 1

fuzz:
	@scripts/install-deps --fuzz
	@[ -f $(FUZZ)/build.ninja ] || CC=clang meson setup $(FUZZ) --buildtype=debugoptimized \
		-Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ)

deb: deps
	scripts/make-deb build/deb build/deb-out

format:
	find src include tests fuzz bench -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf build
