# echolab porcelain. `make test` and `make compare` install missing Debian packages first.
BUILD      ?= build
RELEASE_BUILD ?= build-release
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
# Tests at once: twice the cores, since most of a test's time is spent waiting (on timeouts,
# on a server's start, on Docker), and every test asserts on events, never on speed.
TEST_JOBS  ?= $(shell echo $$(( $$(nproc) * 2 )))
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=
QUICK ?=
PEERS ?=
PEERS_FLAGS ?=
# make compare BASELINE=results/<time>: the new run's diff.md and diff.html against that run.
BASELINE ?=
COMPARE_TARGETS = echolab-prefork echolab-threads echolab-pool echolab-hybrid echolab-floor echolab-load echolab-probe
enabled = $(filter 1 yes true,$(1))
# A compiler cache once `make deps` has installed ccache (looked up when a build directory is
# configured, so a fresh machine gets it on its first build): a fresh clone compiles only what
# no clone before it did. Paths are hashed relative to the tree (CCACHE_BASEDIR), and the
# directory the compiler runs in is left out of the hash (CCACHE_NOHASHDIR), so that clones in
# other directories share the cache.
CCACHE_FLAGS = $$(command -v ccache >/dev/null && echo -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build release test compare peers c10k up down load swarm-up swarm-load swarm-down unit integration asan-build asan tsan fuzz bench format format-check tidy clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CCACHE_FLAGS) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Every test: format check, unit + integration tests, then the ASan+UBSan unit tests (and the
# threads server's shutdown deadline under ASan+UBSan) beside a bounded fuzz run of the Session:
# the fuzzer runs for a fixed time on one core, the tests on the other (each target's output is
# printed whole when it ends).
test: build format-check
	ctest --test-dir $(BUILD) --output-on-failure -j $(TEST_JOBS)
	$(MAKE) --no-print-directory -j 2 --output-sync=target asan fuzz

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

integration: build
	ctest --test-dir $(BUILD) --output-on-failure -L integration

asan-build: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ $(CCACHE_FLAGS) \
	  -DECHOLAB_SANITIZE="address;undefined" -DECHOLAB_FUZZ=ON -DECHOLAB_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target echolab_unit_tests fuzz_session echolab-threads echolab-pool

asan: asan-build
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -L "^unit$$"
	# The threads and pool servers at the shutdown deadline with a handler stuck past it:
	# nothing may be freed under a live thread. Any report fails the test (it reads the log).
	cd tests/integration && ASAN_OPTIONS="halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
	  ECHOLAB_BIN_DIR=$(CURDIR)/$(ASAN_BUILD)/bin \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider -k "shutdown_deadline" test_threads_and_pool.py

tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ $(CCACHE_FLAGS) \
	  -DECHOLAB_SANITIZE=thread -DECHOLAB_BENCH=OFF
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target echolab_unit_tests echolab-threads echolab-pool echolab-hybrid
	ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS) -L "^unit$$"
	# The servers with threads (hybrid's are its metrics process's), driven by their
	# integration tests, the acceptor's stop racing its accepts among them
	# (test_async_hardening); any report fails them.
	cd tests/integration && TSAN_OPTIONS="halt_on_error=1 exitcode=66" ECHOLAB_BIN_DIR=$(CURDIR)/$(TSAN_BUILD)/bin \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider -k "not prefork" test_threads_and_pool.py test_servers.py \
	  test_async_hardening.py

# A bounded libFuzzer run of the Session under ASan+UBSan, from the seed corpus.
fuzz: asan-build
	@mkdir -p $(ASAN_BUILD)/fuzz-corpus
	$(ASAN_BUILD)/tests/fuzz_session -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  $(ASAN_BUILD)/fuzz-corpus tests/fuzz/corpus/session

# The measured binaries: a Release build of their own, so the test build (RelWithDebInfo) is
# left alone. $(call release_build,targets) configures it and builds just those targets.
define release_build
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=Release -DECHOLAB_BENCH=OFF $(CCACHE_FLAGS) $(CMAKE_FLAGS)
	cmake --build $(RELEASE_BUILD) -j $(JOBS) --target $(1)
endef

release: deps
	$(call release_build,$(COMPARE_TARGETS))

# The main job: every model under the same load, the article's claims beside the figures.
compare: release
	$(if $(call enabled,$(PEERS)),scripts/install-deps.sh --peers)
	/usr/bin/python3 -m compare --bin-dir $(RELEASE_BUILD)/bin \
	  $(if $(call enabled,$(QUICK)),--quick) $(if $(call enabled,$(PEERS)),--peers) \
	  $(if $(BASELINE),--baseline $(BASELINE))

# The 10,000-connection scenario against one server: MODEL=prefork|threads|pool|hybrid,
# CONNECTIONS (default 10000); RAMP, HOLD and INTERVAL in seconds (default: the full
# `make compare` hold, 30, 20 and 30).
MODEL ?= threads
CONNECTIONS ?= 10000
c10k: deps
	$(call release_build,echolab-$(MODEL) echolab-load)
	/usr/bin/python3 -m compare.c10k --bin-dir $(RELEASE_BUILD)/bin --model $(MODEL) \
	  --connections $(CONNECTIONS) $(if $(RAMP),--ramp $(RAMP)) $(if $(HOLD),--hold $(HOLD)) \
	  $(if $(INTERVAL),--interval $(INTERVAL))

# Each model beside Apache (prefork, worker), nginx and the floor (echolab-floor) under wrk -t2
# at 100/1,000/10,000 connections, medians of 3. PEERS_FLAGS go to the runner, e.g. "--busy-loops 2 --only pool,nginx".
peers: deps
	scripts/install-deps.sh --peers
	$(call release_build,echolab-prefork echolab-threads echolab-pool echolab-hybrid echolab-floor)
	/usr/bin/python3 -m compare.peers --bin-dir $(RELEASE_BUILD)/bin $(PEERS_FLAGS)

# The Docker Compose stack (docs/stack.md): starts an engine where none runs, builds offline.
up:
	scripts/docker-up.sh

down:
	scripts/docker-down.sh

load:
	scripts/docker-load.sh

# The same stack on a Docker swarm (docs/swarm.md): servers and load replicas placed by node
# label, a distributed echolab-load run merged into one result.
swarm-up:
	scripts/swarm-up.sh

swarm-load:
	scripts/swarm-load.sh

swarm-down:
	scripts/swarm-down.sh

bench: build
	$(BUILD)/bin/bench_session --benchmark_min_time=1

SOURCES = $(shell git ls-files '*.cpp' '*.hpp')

format:
	clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES) && echo "clang-format: clean"

tidy: build
	clang-tidy -p $(BUILD) --quiet $(filter %.cpp,$(SOURCES))

clean:
	rm -rf $(BUILD) $(RELEASE_BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
