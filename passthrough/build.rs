//! Bakes the answer of the "answer floor" build into the module.
//!
//! `PASSTHROUGH_ANSWER` = absolute path of a file holding a waPC `ValidationResponse` (JSON):
//! the file is copied to `$OUT_DIR/answer.json`, which `validate` returns unchanged. Unset (or
//! empty), an empty `answer.json` is written and `validate` accepts as the plain floor does.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=PASSTHROUGH_ANSWER");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let baked = out_dir.join("answer.json");
    match std::env::var_os("PASSTHROUGH_ANSWER").filter(|path| !path.is_empty()) {
        Some(path) => {
            let path = Path::new(&path);
            // Cargo runs build scripts in passthrough/, not where it was called: a relative
            // path would silently mean something else.
            assert!(
                path.is_absolute(),
                "PASSTHROUGH_ANSWER must be an absolute path, not {}",
                path.display()
            );
            println!("cargo:rerun-if-changed={}", path.display());
            std::fs::copy(path, &baked).unwrap_or_else(|err| {
                panic!("cannot copy PASSTHROUGH_ANSWER {}: {err}", path.display())
            });
        }
        None => std::fs::write(&baked, b"").expect("cannot write OUT_DIR/answer.json"),
    }
}
