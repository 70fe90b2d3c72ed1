//! The speed path, set apart from the plain one: what a process (and a pre-initialised policy
//! module, whose every instance starts from one snapshot) remembers between renderings.
//!
//! policy-server gives each admission a fresh instance; `policy.wasm` is pre-initialised with
//! the built-in template compiled and its usual rendering parsed (`wizer-initialize`), so an
//! admission with the built-in template skips the compiler and the YAML parser. What is here
//! exists for that, and for kube-inject's many documents:
//!
//! - [`compiled`]: a template text is compiled once per process (the built-in one into a static,
//!   so that no counted handle writes to the snapshot's pages: see [`shared`]).
//! - [`memo`]: each template remembers its last renderings (text with placeholders) and what they
//!   parse to; [`fill`] turns a remembered rendering into a pod's entries without a parse.
//! - [`MeshData::shared`]: the mesh config converted once per distinct config.
//! - [`same_text`] and [`write_decimal`]: byte work that wasm does slowly (`memcmp` one byte at a
//!   time, `core::fmt` per placeholder).
//!
//! What each saved, measured in our wasmtime host with a fresh instance per admission (the way
//! policy-server runs the module), is in BENCHMARKS.md: the snapshot with the memo took the sleep
//! pod from 8.7× to 3.3–3.5× the pass-through floor, the 8-byte compare 162 → 155 µs, the static
//! built-in template and mesh data a page copy each per admission. Nothing here changes what is
//! rendered: the tests compare remembered entries with a full read.
//!
//! In the real hosts (BENCHMARKS.md, issue 15, one run): in policy-server, whose fresh instance
//! per admission needs the snapshot to find the built-in template compiled and its rendering
//! parsed, the module before pre-initialisation answered 733 sleep pods a second against
//! 1292 (54 against 57 for 2000 env vars). In `kwctl bench`, which keeps one instance, the
//! module before pre-initialisation fills the same memo after its first admission; there the
//! pre-initialised module's medians were 241 µs against 306 µs (sleep pod) and 9.1 against
//! 10.2 ms (2000 env vars), the difference being the allocator's region (`snapshot-heap`).

pub(super) mod fill;
pub(super) mod memo;
pub(crate) mod shared;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::compile::Compiled;
use super::data::MeshData;
use super::{TemplateError, TemplateSyntax};
use crate::config::{BUILTIN_TEMPLATE, MeshConfig};
use memo::{remember, same_text};
use shared::Shared;

/// Templates other than the built-in one compiled so far in this process, newest last.
static COMPILED: Mutex<Vec<Arc<Compiled>>> = Mutex::new(Vec::new());

/// The built-in template, compiled once for the process (see [`Shared`] for why not an `Arc`).
static BUILTIN: OnceLock<Result<Compiled, TemplateError>> = OnceLock::new();

/// The compiled form of `source` in `syntax`: compiled now, or the one compiled before in this
/// process.
pub(in crate::template) fn compiled(
    source: &str,
    syntax: Option<TemplateSyntax>,
) -> Result<Shared<Compiled>, TemplateError> {
    if syntax != Some(TemplateSyntax::Go) && is_builtin_text(source) {
        let builtin = BUILTIN.get_or_init(|| Compiled::new(BUILTIN_TEMPLATE, None));
        return match builtin {
            Ok(compiled) => Ok(Shared::Static(compiled)),
            Err(e) => Err(e.clone()),
        };
    }
    let mut known = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(compiled) = known
        .iter()
        .find(|c| c.syntax == syntax && same_text(&c.source, source))
    {
        return Ok(Shared::Counted(Arc::clone(compiled)));
    }
    let compiled = Arc::new(Compiled::new(source, syntax)?);
    remember(&mut known, Arc::clone(&compiled));
    Ok(Shared::Counted(compiled))
}

/// Whether `source` is the built-in template's text. The default config borrows the text
/// itself, so the address usually tells without reading 3.5 KB (which `==` would do one byte
/// at a time in the wasm module).
pub(crate) fn is_builtin_text(source: &str) -> bool {
    std::ptr::eq(source, BUILTIN_TEMPLATE) || same_text(source, BUILTIN_TEMPLATE)
}

impl MeshData {
    /// The conversion of `mesh`, made once per distinct mesh config in this process (and, in a
    /// pre-initialised policy module, already made for the default one).
    pub(crate) fn shared(mesh: &MeshConfig) -> Shared<Self> {
        static DEFAULT: OnceLock<(MeshConfig, MeshData)> = OnceLock::new();
        static CONVERTED: Mutex<Vec<(MeshConfig, Arc<MeshData>)>> = Mutex::new(Vec::new());
        let (default, data) = DEFAULT.get_or_init(|| {
            let default = MeshConfig::default();
            let data = Self::new(&default);
            (default, data)
        });
        if default == mesh {
            return Shared::Static(data);
        }
        let mut known = CONVERTED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, data)) = known.iter().find(|(config, _)| config == mesh) {
            return Shared::Counted(Arc::clone(data));
        }
        let data = Arc::new(Self::new(mesh));
        remember(&mut known, (mesh.clone(), Arc::clone(&data)));
        Shared::Counted(data)
    }
}

/// `n` in decimal, written at the end of `buffer`.
pub(in crate::template) fn decimal(mut n: usize, buffer: &mut [u8; 20]) -> &str {
    let mut start = buffer.len();
    for slot in buffer.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(buffer.get(start..).unwrap_or_default()).unwrap_or_default()
}

/// Writes `n` in decimal into `f` without going through `core::fmt` (a cost per placeholder).
pub(in crate::template) fn write_decimal(
    f: &mut upon::fmt::Formatter<'_>,
    n: usize,
) -> upon::fmt::Result {
    use std::fmt::Write;
    f.write_str(decimal(n, &mut [0; 20]))?;
    Ok(())
}
