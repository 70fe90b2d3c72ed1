//! Reading the input, writing the result (atomically for `-o`), and unified diffs.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sidecar_injector::manifest::Manifest;
use similar::TextDiff;

/// Reads `-f`: a file, or standard input for `-`.
pub fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("-f -: cannot read standard input")?;
        return Ok(text);
    }
    fs::read_to_string(path).with_context(|| format!("-f {}: cannot read", path.display()))
}

/// Writes the result to `-o FILE`, or to standard output (also for `-o -`).
pub fn write_output(output: Option<&Path>, text: &str) -> Result<()> {
    match output.filter(|path| *path != Path::new("-")) {
        Some(path) => write_atomically(path, text)
            .with_context(|| format!("-o {}: cannot write", path.display())),
        None => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// Writes a temporary file beside `path` and renames it over `path`, so readers see the old file
/// or the new one, never a part; on failure the temporary file is removed.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    // Replace the file a symlink points to, not the link.
    let path = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".kube-inject-{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        if let Ok(meta) = fs::metadata(&path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A unified diff of every changed document, each with a header naming the file and document.
/// Hunk line numbers count from the document's first line.
pub fn diff(manifest: &Manifest<'_>, input: &Path, verb: &str) -> String {
    let file = input.display().to_string();
    let mut out = String::new();
    for document in manifest.documents.iter().filter(|d| d.changed) {
        let label = format!("{file}: {}, from line {}", document.label(), document.line);
        let diff = TextDiff::from_lines(document.original, document.output.as_ref());
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&label, &format!("{label}, {verb}"))
                .to_string(),
        );
    }
    out
}
