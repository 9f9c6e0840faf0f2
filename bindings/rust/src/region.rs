//! `Region`: which bytes of which file to send.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A region of a file: a source (an open file or a path), a start offset and
/// a byte count (default: to the end of the file).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use evsendfile::Region;
/// let file = std::fs::File::open("Cargo.toml")?;
/// let _bytes_10_to_29 = Region::fd(&file).offset(10).count(20);
/// let _whole_file = Region::path("Cargo.toml");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Region<'a> {
    pub(crate) source: Source<'a>,
    pub(crate) offset: u64,
    pub(crate) count: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) enum Source<'a> {
    /// The caller's open file (regular file, pipe, FIFO, character device).
    Fd(BorrowedFd<'a>),
    /// A path the library opens (and closes); `None` if it contains a NUL byte.
    Path(Option<CString>),
}

impl<'a> Region<'a> {
    /// The whole of an open file.  The descriptor is duplicated when the
    /// transfer starts, so `file` may be closed any time after `send` returns.
    pub fn fd<F: AsFd + ?Sized>(file: &'a F) -> Region<'a> {
        Region::borrowed(file.as_fd())
    }

    /// Like [`Region::fd`], from a `BorrowedFd`.
    pub fn borrowed(fd: BorrowedFd<'a>) -> Region<'a> {
        Region { source: Source::Fd(fd), offset: 0, count: None }
    }

    /// The whole of the file at `path`, opened by the library when the
    /// transfer starts (errors such as `ENOENT` come from `send`).
    pub fn path<P: AsRef<Path>>(path: P) -> Region<'static> {
        let c = CString::new(path.as_ref().as_os_str().as_bytes()).ok();
        Region { source: Source::Path(c), offset: 0, count: None }
    }

    /// Starts at byte `offset` of the file (past the end: `ERANGE`).
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Sends exactly `count` bytes (past the end of the file: `ERANGE`).
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Sends up to the end of the file (the default).
    pub fn to_eof(mut self) -> Self {
        self.count = None;
        self
    }
}
