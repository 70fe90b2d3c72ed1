//! Custom sections of a WebAssembly module: where `kwctl annotate` (and our `annotate-policy`)
//! puts the policy's metadata, `io.kubewarden.metadata`.
//!
//! A core module is the magic `\0asm`, version 1, then sections of one id byte and a LEB128 size;
//! a custom section (id 0) starts with its LEB128-prefixed name. Reading that takes a few lines,
//! so this crate does not depend on a wasm parser.

/// Name of the custom section that holds the policy metadata policy-server reads.
pub const METADATA_SECTION: &str = "io.kubewarden.metadata";

const MAGIC: &[u8; 4] = b"\0asm";
const VERSION_1: &[u8; 4] = &[1, 0, 0, 0];

/// Why the bytes are not a core WebAssembly module this reader can walk.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WasmError {
    /// The file does not start with `\0asm` and version 1.
    #[error("not a core WebAssembly module (no `\\0asm` header of version 1)")]
    NotAModule,
    /// A section runs past the end of the file.
    #[error("truncated WebAssembly module: section at byte {offset} runs past the end")]
    Truncated {
        /// Where the broken section starts.
        offset: usize,
    },
}

/// The payload of the first custom section called `name`, or `None` when there is none.
pub fn custom_section<'a>(module: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, WasmError> {
    if module.len() < 8 || &module[..4] != MAGIC || &module[4..8] != VERSION_1 {
        return Err(WasmError::NotAModule);
    }
    let mut at = 8;
    while at < module.len() {
        let start = at;
        let truncated = WasmError::Truncated { offset: start };
        let id = module[at];
        at += 1;
        let size = leb128_u32(module, &mut at).ok_or(truncated.clone())? as usize;
        let end = at.checked_add(size).filter(|end| *end <= module.len());
        let end = end.ok_or(truncated.clone())?;
        if id == 0 {
            let mut inner = at;
            let name_len =
                leb128_u32(&module[..end], &mut inner).ok_or(truncated.clone())? as usize;
            let name_end = inner.checked_add(name_len).filter(|e| *e <= end);
            let name_end = name_end.ok_or(truncated)?;
            if &module[inner..name_end] == name.as_bytes() {
                return Ok(Some(&module[name_end..end]));
            }
        }
        at = end;
    }
    Ok(None)
}

/// Reads an unsigned LEB128 number of at most 32 bits at `*at`, moving `*at` past it.
fn leb128_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module holding only the given custom sections.
    fn module(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        for (name, payload) in sections {
            let size = 1 + name.len() + payload.len();
            out.push(0);
            out.push(u8::try_from(size).unwrap());
            out.push(u8::try_from(name.len()).unwrap());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn finds_the_named_section_among_others() {
        let m = module(&[("name", b"x"), (METADATA_SECTION, b"{}"), ("other", b"y")]);
        assert_eq!(custom_section(&m, METADATA_SECTION), Ok(Some(&b"{}"[..])));
        assert_eq!(custom_section(&m, "absent"), Ok(None));
    }

    #[test]
    fn multi_byte_sizes_are_read() {
        let mut at = 0;
        assert_eq!(leb128_u32(&[0xe5, 0x8e, 0x26], &mut at), Some(624_485));
        assert_eq!(at, 3);
    }

    #[test]
    fn a_section_past_the_end_is_an_error() {
        let mut m = module(&[(METADATA_SECTION, b"{}")]);
        m.truncate(m.len() - 1);
        assert_eq!(
            custom_section(&m, METADATA_SECTION),
            Err(WasmError::Truncated { offset: 8 })
        );
    }

    #[test]
    fn other_files_are_not_modules() {
        assert_eq!(custom_section(b"hello", "x"), Err(WasmError::NotAModule));
    }
}
