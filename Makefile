# Kubewarden's conventional targets (policies/Makefile.rust), without needing kwctl to build.
SOURCE_FILES := $(shell find src -type f)
WASM_TARGET := wasm32-wasip1

# How the host tools (preinit-policy, annotate-policy, run-policy) are built before they run.
# `make test` builds them with the whole workspace's features, the set `cargo test --workspace`
# resolves, so wasmtime and cranelift are compiled once instead of once per feature set.
HOST_TOOLS_BUILD ?= cargo build --quiet -p host-tests --bins
HOST_TOOLS := target/debug

.PHONY: all
all: annotated-policy.wasm kube-inject

# The module as cargo builds it, then pre-initialised (Wizer): every instance policy-server makes
# starts with the built-in template compiled and its usual rendering parsed.
policy.wasm: $(SOURCE_FILES) Cargo.toml Cargo.lock host-tests/src/preinit.rs
	rustup target add $(WASM_TARGET) >/dev/null 2>&1 || true
	cargo build --target=$(WASM_TARGET) --release -p sidecar-injector -p passthrough
	$(HOST_TOOLS_BUILD)
	$(HOST_TOOLS)/preinit-policy target/$(WASM_TARGET)/release/sidecar_injector.wasm policy.wasm

# Writes the io.kubewarden.metadata custom section itself (what `kwctl annotate` does).
annotated-policy.wasm: policy.wasm metadata.yml README.md
	$(HOST_TOOLS_BUILD)
	$(HOST_TOOLS)/annotate-policy --metadata metadata.yml --usage README.md --input policy.wasm --output annotated-policy.wasm

# The seed's sleep pod, as an AdmissionReview, through the real module in the wasmtime host.
.PHONY: run
run: policy.wasm
	$(HOST_TOOLS_BUILD)
	$(HOST_TOOLS)/run-policy samples/sleep/admission-review.json

.PHONY: kube-inject
kube-inject:
	cargo build --release -p kube-inject

.PHONY: fmt
fmt:
	cargo fmt --all -- --check

# The core twice: as the workspace builds it (kube-inject turns on `preserve_order`) and as the
# policy module does (without it).
.PHONY: lint
lint:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p sidecar-injector --all-targets -- -D warnings

.PHONY: test
test: fmt lint
	$(MAKE) annotated-policy.wasm HOST_TOOLS_BUILD='cargo build --workspace --all-targets'
	cargo test --workspace
	cargo test -p sidecar-injector

# With kwctl installed: run the annotated module in Kubewarden's own host.
.PHONY: e2e-tests
e2e-tests: annotated-policy.wasm
	bats e2e.bats

.PHONY: bench
bench: policy.wasm
	cargo run --release -p host-tests --bin bench

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
