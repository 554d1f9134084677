# The two commands of the README, and a few more for developers.
#
#   make run    install missing packages, build, start parleyd on the
#               embedded default (state in ./parley-data, loopback ports;
#               STATE_DIR=, API= and FEED= choose others; a log key made
#               there for the transparency log's checkpoints) and
#               parley-gateway (the status board) on 127.0.0.1:7780
#               (GATEWAY_LISTEN=)
#   make test   install missing packages, build, run every test
#
# Other targets: build, serve (parleyd alone from BUILD, with the
# variables of run), asan (the suite under ASan+UBSan), fuzz (each libFuzzer
# target for FUZZ_SECONDS), bench, install, deb, clean, deps, abi-update
# (record the ABI of libparley in abi/ after a deliberate change; `make
# test` checks it).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
CMAKE_ARGS ?=
STATE_DIR  ?= $(CURDIR)/parley-data
API        ?= tcp://127.0.0.1:7710
FEED       ?= tcp://127.0.0.1:7711
GATEWAY_LISTEN ?= 127.0.0.1:7780
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600

# Debian packages the build and the tests need.
PACKAGES = cmake make gcc pkg-config python3 \
           libzmq3-dev libsodium-dev libprotobuf-c-dev protobuf-c-compiler \
           libjansson-dev libcmocka-dev libsystemd-dev curl abigail-tools \
           libcurl4-openssl-dev libmicrohttpd-dev chromium chromium-driver \
           python3-selenium libnats-dev nats-server

.PHONY: all run serve test build asan fuzz deps bench install deb clean abi-update

all: build

deps:
	@sh ./scripts/deps.sh $(PACKAGES)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_WERROR=ON $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@mkdir -p -m 700 "$(STATE_DIR)"
	@test -f "$(STATE_DIR)/log.key" || { $(BUILD)/parley keygen -q -o "$(STATE_DIR)/log.key" >/dev/null && echo "made the log key $(STATE_DIR)/log.key (public key: log.key.pub)"; }
	@PATH="$(abspath $(BUILD)):$$PATH" sh ./scripts/run.sh "$(BUILD)" "$(STATE_DIR)" \
	    "$(GATEWAY_LISTEN)" "$(API)" "$(FEED)"

# parleyd alone, from BUILD, in the foreground. STATE_DIR is made 0700,
# as parleyd makes it (parleyd(8)).
serve:
	@mkdir -p -m 700 "$(STATE_DIR)"
	PATH="$(abspath $(BUILD)):$$PATH" $(BUILD)/parleyd --state-dir "$(STATE_DIR)" \
	    --api "$(API)" --feed "$(FEED)"

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPARLEY_WERROR=ON \
	      -DPARLEY_SANITIZE=address,undefined $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j$(JOBS)

fuzz:
	@sh ./scripts/deps.sh $(PACKAGES) clang libclang-rt-14-dev
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	      -DPARLEY_FUZZ=ON -DPARLEY_SANITIZE=address,undefined -DPARLEY_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	sh ./scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: build
	cmake --build $(BUILD) -j$(JOBS) --target bench
	@sh ./bench/run.sh $(BUILD)

abi-update: build
	sh ./scripts/abi.sh update $(BUILD)

install: build
	cmake --install $(BUILD)

deb: build
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
