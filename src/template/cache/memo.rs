//! What a compiled template remembers of its renderings: each distinct text (placeholders still
//! in) and what it parses to.
//!
//! Most pods render to the same text: their own values are placeholders, and only the template's
//! `if`s on annotations change the text. Remembering a few texts spares the YAML parser, the
//! largest cost of an injection. The text being rendered is compared with the remembered ones as
//! upon writes it, so a rendering seen before is never built as a string at all.

use std::io;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::fill::EntriesRecipe;
use crate::template::{SidecarInjectionSpec, TemplateError};

/// How many renderings (and, in the parent module, templates) are remembered.
///
/// In the policy the memory lives as long as the instance, i.e. one admission, unless the
/// module was pre-initialised (`wizer-initialize`): then every instance starts with the built-in
/// template compiled and its common rendering parsed.
pub(in crate::template) const REMEMBERED: usize = 4;

/// One rendered text, parsed.
pub(in crate::template) struct Parsed {
    /// The YAML tree, placeholders still in.
    pub(in crate::template) tree: Value,
    /// The tree read as a SidecarInjectionSpec, placeholders still in, when that works. It then
    /// holds placeholders only where the spec takes text, so a pod's text values can replace
    /// them without reading the spec again.
    pub(in crate::template) recipe: Option<EntriesRecipe>,
}

impl Parsed {
    fn new(text: &str) -> Result<Self, TemplateError> {
        let tree: Value =
            serde_yaml::from_str(text).map_err(|e| TemplateError::Yaml(e.to_string()))?;
        let recipe = SidecarInjectionSpec::from_value(tree.clone())
            .and_then(|spec| spec.to_entries())
            .ok()
            .and_then(|entries| EntriesRecipe::new(&entries));
        Ok(Self { tree, recipe })
    }
}

/// The renderings one template remembers, newest last.
#[derive(Default)]
pub(in crate::template) struct Renderings {
    known: Mutex<Vec<(String, Parsed)>>,
}

impl Renderings {
    /// Runs `render`, then calls `read` with what its text parses to and what `render`
    /// returned; the text is parsed only the first time it is seen.
    ///
    /// Both run under the memo's lock, so `read` borrows the remembered rendering instead of
    /// taking a counted copy: in a pre-initialised module a count would be written to the
    /// snapshot's pages, and the host copies every such page (see `crate::shared`).
    pub(in crate::template) fn render_and_read<R, T>(
        &self,
        render: impl FnOnce(&mut MemoWriter<'_>) -> Result<R, TemplateError>,
        read: impl FnOnce(&Parsed, R) -> Result<T, TemplateError>,
    ) -> Result<T, TemplateError> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let mut writer = MemoWriter::new(&known);
        let rendered = render(&mut writer)?;
        let text = match writer.finish() {
            Ok(parsed) => return read(parsed, rendered),
            Err(text) => text,
        };
        let parsed = Parsed::new(&text)?;
        let result = read(&parsed, rendered);
        remember(&mut known, (text, parsed));
        result
    }

    /// How many renderings are remembered.
    #[cfg(test)]
    pub(in crate::template) fn len(&self) -> usize {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Adds `item` as the newest entry, forgetting the oldest beyond [`REMEMBERED`].
pub(in crate::template) fn remember<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= REMEMBERED {
        list.remove(0);
    }
    list.push(item);
}

/// Where upon writes a rendering: it checks the bytes against the remembered texts as they
/// come, and keeps them only once no remembered text matches.
pub(in crate::template) struct MemoWriter<'a> {
    known: &'a [(String, Parsed)],
    /// Bit `i` is set while `known[i]` starts with everything written so far.
    matching: u32,
    /// Bytes written so far.
    written: usize,
    /// The text itself, once it differs from every remembered one.
    text: Option<Vec<u8>>,
}

impl<'a> MemoWriter<'a> {
    fn new(known: &'a [(String, Parsed)]) -> Self {
        let matching = if known.is_empty() {
            0
        } else {
            u32::MAX >> (32 - known.len().min(32))
        };
        Self {
            known,
            matching,
            written: 0,
            text: (known.is_empty()).then(Vec::new),
        }
    }

    /// A remembered text that starts with everything written so far.
    fn matching_text(&self) -> Option<&'a [u8]> {
        (0..self.known.len())
            .find(|i| self.matching & (1 << i) != 0)
            .and_then(|i| self.known.get(i))
            .map(|(text, _)| text.as_bytes())
    }

    /// The remembered rendering that was written, or the new text.
    fn finish(mut self) -> Result<&'a Parsed, String> {
        if self.text.is_none() {
            let whole =
                self.known.iter().enumerate().find(|(i, (text, _))| {
                    self.matching & (1 << i) != 0 && text.len() == self.written
                });
            if let Some((_, (_, parsed))) = whole {
                return Ok(parsed);
            }
            self.text = Some(self.prefix());
        }
        let bytes = self.text.unwrap_or_default();
        // upon writes whole `&str`s, so the bytes are UTF-8; a lossy copy is never made.
        Err(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// A copy of what has been written so far, taken from a text that still matches it.
    fn prefix(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.written.max(1024) * 2);
        if let Some(known) = self.matching_text() {
            text.extend_from_slice(known.get(..self.written).unwrap_or_default());
        }
        text
    }
}

impl io::Write for MemoWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(text) = &mut self.text {
            text.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let end = self.written + buf.len();
        let before = self.matching;
        for (i, (known, _)) in self.known.iter().enumerate() {
            let still = known
                .as_bytes()
                .get(self.written..end)
                .is_some_and(|part| same_bytes(part, buf));
            if !still {
                self.matching &= !(1 << i);
            }
        }
        if self.matching == 0 {
            self.matching = before;
            let mut text = self.prefix();
            self.matching = 0;
            text.extend_from_slice(buf);
            self.text = Some(text);
        }
        self.written = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether two texts are equal, compared eight bytes at a time.
///
/// The memo compares whole templates and renderings (kilobytes) on every admission, and in the
/// wasm module `==` on text calls a `memcmp` that compares one byte at a time.
pub(in crate::template) fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    a_rest == b_rest
        && a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Remembered renderings with these texts (the parsed side is not looked at).
    fn known(texts: &[&str]) -> Vec<(String, Parsed)> {
        texts
            .iter()
            .map(|t| {
                let tree = Value::String((*t).to_string());
                (t.to_string(), Parsed { tree, recipe: None })
            })
            .collect()
    }

    /// Writes `pieces` as upon would and says which rendering, or which new text, came out.
    fn write(known: &[(String, Parsed)], pieces: &[&str]) -> Result<Value, String> {
        let mut writer = MemoWriter::new(known);
        for piece in pieces {
            writer.write_all(piece.as_bytes()).expect("never fails");
        }
        writer.finish().map(|parsed| parsed.tree.clone())
    }

    #[test]
    fn a_rendering_seen_before_is_found_without_keeping_its_text() {
        let known = known(&["a: 1\nb: 2\n", "a: 1\nb: 3\n"]);
        assert_eq!(
            write(&known, &["a: 1\n", "b: 3\n"]),
            Ok(Value::from("a: 1\nb: 3\n"))
        );
        assert_eq!(
            write(&known, &["a: 1\nb", ": 2\n"]),
            Ok(Value::from("a: 1\nb: 2\n"))
        );
    }

    #[test]
    fn a_new_rendering_comes_back_whole() {
        let known = known(&["a: 1\nb: 2\n", "a: 1\nb: 3\n"]);
        // Differs in the middle of a piece, after some pieces matched.
        assert_eq!(
            write(&known, &["a: 1\n", "b: 4\n", "c: 5\n"]),
            Err("a: 1\nb: 4\nc: 5\n".into())
        );
        // Shorter and longer than a remembered text that starts the same.
        assert_eq!(write(&known, &["a: 1\n"]), Err("a: 1\n".into()));
        assert_eq!(
            write(&known, &["a: 1\nb: 2\n", "c"]),
            Err("a: 1\nb: 2\nc".into())
        );
        // Nothing remembered, and nothing written.
        assert_eq!(write(&[], &["x", "y"]), Err("xy".into()));
        assert_eq!(write(&[], &[]), Err(String::new()));
    }

    #[test]
    fn same_text_compares_every_byte() {
        let text = "0123456789abcdefghij";
        let copy = String::from_utf8(text.as_bytes().to_vec()).expect("UTF-8");
        assert!(same_text(text, &copy));
        assert!(same_text("", ""));
        // A difference in a whole eight-byte word, in the tail, and in length.
        assert!(!same_text(text, "0123X56789abcdefghij"));
        assert!(!same_text(text, "0123456789abcdefghiX"));
        assert!(!same_text(text, "0123456789abcdefghi"));
        assert!(!same_text("abc", "abd"));
    }
}
