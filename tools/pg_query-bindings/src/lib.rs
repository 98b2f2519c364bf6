//! Stands in for bindgen in pg_query's build script, which runs
//! `bindgen::Builder::default().header(h).generate()?.write_to_file(f)?` on
//! libpg_query's `pg_query.h`. Real bindgen needs libclang at build time; this
//! crate writes the bindings generated ahead of time from the same headers
//! (`pg_query_bindings.rs`, made by `regenerate.sh` with bindgen 0.66.1), after
//! checking that the headers next to `h` are the ones they were made from. Other
//! headers, or other header contents (a pg_query upgrade), are an error naming
//! the fix, never silently mismatched bindings.

use std::fmt;
use std::path::{Path, PathBuf};

/// The bindings, generated ahead of time.
const BINDINGS: &str = include_str!("pg_query_bindings.rs");
/// `name fnv1a64` of each header the bindings were generated from.
const HEADERS: &str = include_str!("headers.txt");

/// Why no bindings could be written.
#[derive(Debug)]
pub struct BindgenError(String);

impl fmt::Display for BindgenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindgenError {}

/// The subset of bindgen's builder that pg_query's build script uses.
#[derive(Debug, Default)]
pub struct Builder {
    header: Option<PathBuf>,
}

impl Builder {
    pub fn header<T: Into<String>>(mut self, header: T) -> Builder {
        self.header = Some(PathBuf::from(header.into()));
        self
    }

    pub fn generate(self) -> Result<Bindings, BindgenError> {
        let header = self
            .header
            .ok_or_else(|| BindgenError("no header given".into()))?;
        if header.file_name().and_then(|n| n.to_str()) != Some("pg_query.h") {
            return Err(BindgenError(format!(
                "{}: pgwarden's pregenerated bindings only cover pg_query.h",
                header.display()
            )));
        }
        let dir = header.parent().unwrap_or(Path::new("."));
        check_headers(dir)?;
        Ok(Bindings)
    }
}

/// Bindings ready to be written.
#[derive(Debug)]
pub struct Bindings;

impl Bindings {
    pub fn write_to_file<P: AsRef<Path>>(&self, path: P) -> std::io::Result<()> {
        std::fs::write(path, BINDINGS)
    }
}

fn check_headers(dir: &Path) -> Result<(), BindgenError> {
    for line in HEADERS.lines().filter(|l| !l.trim().is_empty()) {
        let (name, want) = line.split_once(' ').unwrap_or((line, ""));
        let path = dir.join(name);
        let text = std::fs::read(&path)
            .map_err(|e| BindgenError(format!("{}: {e}", path.display())))?;
        let got = format!("{:016x}", fnv1a64(&text));
        if got != want.trim() {
            return Err(BindgenError(format!(
                "{} is not the header pgwarden's pregenerated pg_query bindings were made \
                 from (pg_query was upgraded?): run tools/pg_query-bindings/regenerate.sh \
                 (needs libclang-dev) and commit the result",
                path.display()
            )));
        }
    }
    Ok(())
}

/// FNV-1a, 64 bit: detects a changed header (not an adversary: the headers come
/// from the pg_query crate that Cargo.lock pins by checksum).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_changed_header_is_an_error() {
        let dir = std::env::temp_dir().join(format!("pgq-bindings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for line in HEADERS.lines() {
            let name = line.split(' ').next().unwrap();
            std::fs::write(dir.join(name), "changed").unwrap();
        }
        let e = Builder::default()
            .header(dir.join("pg_query.h").to_str().unwrap())
            .generate()
            .unwrap_err();
        assert!(e.to_string().contains("regenerate.sh"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
