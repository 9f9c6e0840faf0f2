//! Test files, shared by this crate's tests and evsendfile-tokio's
//! (tokio/tests/common/mod.rs includes this file by path).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes that differ from their neighbours and do not repeat every 256 bytes,
/// so a shifted, duplicated or missing chunk shows up.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 20) as u8).collect()
}

/// The byte `TempFile::sparse_marked` writes at its i-th mark.
pub fn mark(i: usize) -> u8 {
    (i % 251 + 1) as u8
}

/// A file in the temp dir, removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    fn fresh_path(tag: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("evsendfile-rs-{}-{n}-{tag}", std::process::id()))
    }

    pub fn with(data: &[u8]) -> TempFile {
        let path = Self::fresh_path("data");
        File::create(&path).unwrap().write_all(data).unwrap();
        TempFile { path }
    }

    /// A sparse file of `len` zero bytes (cheap, even when large).
    pub fn sparse(len: u64) -> TempFile {
        Self::sparse_marked(len, &[])
    }

    /// A sparse file of `len` bytes, zero except for the byte `mark(i)` at offset `marks[i]`.
    pub fn sparse_marked(len: u64, marks: &[u64]) -> TempFile {
        let path = Self::fresh_path("sparse");
        let f = File::create(&path).unwrap();
        f.set_len(len).unwrap();
        for (i, &m) in marks.iter().enumerate() {
            f.write_all_at(&[mark(i)], m).unwrap();
        }
        TempFile { path }
    }

    pub fn open(&self) -> File {
        File::open(&self.path).unwrap()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
