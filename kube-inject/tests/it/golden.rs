//! The golden corpus: `tests/testdata/inject/<case>.yaml` in, `<case>.yaml.injected` out.
//!
//! Cases are found by listing the directory; `<case>.yaml.config` / `<case>.yaml.mesh`, when
//! present, are passed as `--injectConfigFile` / `--meshConfigFile`. The status annotation's
//! template hash is masked when comparing. `REFRESH_GOLDEN=1 cargo test -p kube-inject` rewrites
//! the `.injected` files; a `.injected`, `.config` or `.mesh` without its `<case>.yaml` fails the
//! test (a stale golden file).

use std::fs;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::util::{golden_dir, kube_inject, mask_version, read};

struct Case {
    input: PathBuf,
    golden: PathBuf,
    flags: Vec<String>,
}

fn cases() -> (Vec<Case>, Vec<String>) {
    let dir = golden_dir();
    let mut cases = Vec::new();
    let mut stale = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(case) = name.strip_suffix(".yaml") {
            let input = dir.join(&name);
            let sibling = |ext: &str| dir.join(format!("{case}.yaml.{ext}"));
            let mut flags = Vec::new();
            for (ext, flag) in [
                ("config", "--injectConfigFile"),
                ("mesh", "--meshConfigFile"),
            ] {
                if sibling(ext).exists() {
                    flags.push(flag.to_string());
                    flags.push(sibling(ext).display().to_string());
                }
            }
            cases.push(Case {
                input,
                golden: sibling("injected"),
                flags,
            });
        } else {
            let owner = [".yaml.injected", ".yaml.config", ".yaml.mesh"]
                .iter()
                .find_map(|ext| name.strip_suffix(ext));
            match owner {
                Some(case) if dir.join(format!("{case}.yaml")).exists() => {}
                _ => stale.push(name),
            }
        }
    }
    (cases, stale)
}

fn run(case: &Case, input: &Path) -> String {
    let out = kube_inject()
        .args(&case.flags)
        .arg("-f")
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn golden_corpus() {
    let refresh = std::env::var_os("REFRESH_GOLDEN").is_some_and(|v| v != "0" && !v.is_empty());
    let (cases, stale) = cases();
    assert!(cases.len() >= 20, "the corpus lost cases: {}", cases.len());
    assert!(
        stale.is_empty(),
        "stale golden files (no <case>.yaml): {stale:?}"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let actual = run(case, &case.input);
        if refresh {
            fs::write(&case.golden, &actual).unwrap();
            continue;
        }
        let Ok(expected) = fs::read_to_string(&case.golden) else {
            failures.push(format!(
                "{}: no golden file; run with REFRESH_GOLDEN=1",
                case.golden.display()
            ));
            continue;
        };
        let (actual, expected) = (mask_version(&actual), mask_version(&expected));
        if actual != expected {
            let diff = TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .header("golden", "actual")
                .to_string();
            failures.push(format!("{}:\n{diff}", case.golden.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (REFRESH_GOLDEN=1 rewrites them):\n{}",
        failures.join("\n")
    );
}

/// Injecting a golden file again changes nothing: not one byte.
#[test]
fn golden_outputs_are_fixed_points() {
    let (cases, _) = cases();
    for case in &cases {
        if !case.golden.exists() {
            continue;
        }
        let golden = read(&case.golden);
        let again = run(case, &case.golden);
        assert!(
            mask_version(&again) == mask_version(&golden),
            "{}: re-injecting the golden output changed it",
            case.golden.display()
        );
    }
}
