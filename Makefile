# Kubewarden's conventional targets (policies/Makefile.rust), without needing kwctl to build.
SOURCE_FILES := $(shell find src snapshot-heap/src -type f)
WASM_TARGET := wasm32-wasip1
# Where cargo writes, as cargo itself decides it.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

# How the host tools (preinit-policy, annotate-policy, run-policy) are built before they run.
# `make test` builds them with the whole workspace's features, the set `cargo test --workspace`
# resolves, so wasmtime and cranelift are compiled once instead of once per feature set.
HOST_TOOLS_BUILD ?= cargo build --quiet -p host-tests --bins
HOST_TOOLS := $(TARGET_DIR)/debug

.PHONY: all
all: annotated-policy.wasm kube-inject

# The module as cargo builds it, then pre-initialised (Wizer): every instance policy-server makes
# starts with the built-in template compiled and its usual rendering parsed.
policy.wasm: $(SOURCE_FILES) Cargo.toml Cargo.lock host-tests/src/preinit.rs
	rustup target add $(WASM_TARGET) >/dev/null 2>&1 || true
	cargo build --target=$(WASM_TARGET) --release -p sidecar-injector -p passthrough
	$(HOST_TOOLS_BUILD)
	$(HOST_TOOLS)/preinit-policy $(TARGET_DIR)/$(WASM_TARGET)/release/sidecar_injector.wasm policy.wasm

# Writes the io.kubewarden.metadata custom section itself (what `kwctl annotate` does).
annotated-policy.wasm: policy.wasm metadata.yml README.md
	$(HOST_TOOLS_BUILD)
	$(HOST_TOOLS)/annotate-policy --metadata metadata.yml --usage README.md --input policy.wasm --output annotated-policy.wasm

# The seed's sleep pod, as an AdmissionReview, through the real module in the wasmtime host.
.PHONY: run
run: policy.wasm
	$(HOST_TOOLS_BUILD)
	$(HOST_TOOLS)/run-policy samples/sleep/admission-review.json

# The JS face (web/): the core built for browsers, and wasm-bindgen's ES module around it, in
# web/www/pkg beside the playground page. The wasm-bindgen command must be the version of the
# crate in Cargo.lock; it is installed under $(TARGET_DIR)/tools, again whenever Cargo.lock changes
# (without --locked: the registry may lack a crate its own lock file pins).
WASM_BINDGEN_VERSION = $(or $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' Cargo.lock),$(error no wasm-bindgen version in Cargo.lock))
WASM_BINDGEN := $(TARGET_DIR)/tools/bin/wasm-bindgen
WEB_SOURCES := $(SOURCE_FILES) $(shell find web/src -type f)

$(WASM_BINDGEN): Cargo.lock
	cargo install --quiet --root $(TARGET_DIR)/tools wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	touch $@

web/www/pkg/sidecar_injector_web.js: $(WEB_SOURCES) web/Cargo.toml Cargo.toml Cargo.lock $(WASM_BINDGEN)
	rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
	cargo build --target=wasm32-unknown-unknown --profile web -p sidecar-injector-web
	$(WASM_BINDGEN) --target web --remove-name-section --remove-producers-section --out-dir web/www/pkg \
		$(TARGET_DIR)/wasm32-unknown-unknown/web/sidecar_injector_web.wasm

.PHONY: web
web: web/www/pkg/sidecar_injector_web.js

# The built module under Node's test runner, against kube-inject's golden corpus and the
# policy's host-tests fixtures; and the playground page clicked in Chromium, when there is one.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --silent

.PHONY: web-test
web-test: web web/node_modules/.package-lock.json
	cd web && npm test --silent

# The playground page, on http://localhost:8080/.
.PHONY: serve-web
serve-web: web
	python3 -m http.server --directory web/www 8080

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
	$(MAKE) web-test

# Publishing (publish/, the policy-publish command). The version comes from Cargo.toml
# ([workspace.package]); `policy-publish version` fails unless metadata.yml says the same.
# REGISTRY is host[:port]/path (default: io.kubewarden.policy.ociUrl in metadata.yml), TAG the
# tag (default: v<version>). Registries reached over plain HTTP are named in INSECURE_REGISTRIES
# (host:port, comma-separated); credentials come from ~/.docker/config.json or $DOCKER_CONFIG;
# the private key's password from COSIGN_PASSWORD.
PUBLISH = cargo run --quiet -p policy-publish --
VERSION = $(or $(shell $(PUBLISH) version),$(error Cargo.toml and metadata.yml must agree on the version: run $(PUBLISH) version))
REGISTRY ?= $(shell sed -n 's/^  io.kubewarden.policy.ociUrl: *//p' metadata.yml)
TAG ?= v$(VERSION)
KEY ?= cosign.key
PUBLIC_KEY ?= $(KEY:.key=.pub)
export INSECURE_REGISTRIES

# Pushes annotated-policy.wasm; prints the immutable reference (…@sha256:…) for policy.yaml.
.PHONY: publish
publish: annotated-policy.wasm
	$(PUBLISH) push annotated-policy.wasm registry://$(REGISTRY):$(TAG)

# Signs the pushed tag's digest with a cosign key (the sha256-<digest>.sig tag).
.PHONY: sign
sign:
	$(PUBLISH) sign registry://$(REGISTRY):$(TAG) --key $(KEY)

# Checks the signature against the public key, as Kubewarden's verification does.
.PHONY: verify
verify:
	$(PUBLISH) verify registry://$(REGISTRY):$(TAG) --key $(PUBLIC_KEY)

# A key pair for `sign`, as `cosign generate-key-pair` writes it (password from COSIGN_PASSWORD).
cosign.key:
	$(PUBLISH) generate-key-pair --output-prefix $(basename $@)

# artifacthub-pkg.yml from metadata.yml and questions-ui.yml (the tests fail when it is stale).
.PHONY: artifacthub
artifacthub:
	$(PUBLISH) artifacthub

# The release: one version, tested, pushed, signed and the signature checked.
.PHONY: release
release:
	$(PUBLISH) version
	$(PUBLISH) artifacthub --check
	$(MAKE) test
	$(MAKE) publish
	$(MAKE) sign
	$(MAKE) verify

# With kwctl installed: run the annotated module in Kubewarden's own host.
.PHONY: e2e-tests
e2e-tests: annotated-policy.wasm
	bats e2e.bats

.PHONY: bench
bench: policy.wasm
	cargo run --release -p host-tests --bin bench

# Coverage-guided fuzzing (cargo fuzz, libFuzzer, the nightly toolchain): every target in fuzz/
# for FUZZ_SECONDS each, seeded from fuzz/seeds (the fixtures and golden files). RELIABILITY.md
# says what each target checks. `fuzz-ci` is the short run CI makes.
FUZZ_SECONDS ?= 600
.PHONY: fuzz fuzz-ci
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	fuzz/run $(FUZZ_SECONDS)

fuzz-ci:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	fuzz/run 20

.PHONY: clean
clean:
	cargo clean
	rm -rf policy.wasm annotated-policy.wasm web/www/pkg web/node_modules
