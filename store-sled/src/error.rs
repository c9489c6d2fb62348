//! How failures become the contract's [`Error`]: sled's and the file
//! system's as [`Error::Backend`], retryable when the I/O error may pass; a
//! setting or a directory the builder refuses as [`Error::Config`].

use std::fmt::Display;
use std::path::Path;

use session_core::{BackendError, ConfigError, Error};

/// A sled failure during an operation: an I/O error that may pass (the disk
/// was busy, a call was interrupted) is transient; anything else, including
/// corruption that sled detected in its own files, is permanent.
pub(crate) fn backend(e: sled::Error) -> Error {
    let retryable = may_pass(&e);
    let message = match e {
        sled::Error::Io(io) => format!("sled I/O error: {io}"),
        sled::Error::Corruption { at, .. } => format!("sled detected corruption in its files (at {at:?})"),
        other => format!("sled error: {other}"),
    };
    Error::Backend(BackendError::new(message, retryable))
}

/// Whether a sled failure may pass if the same call is tried again: only an
/// I/O error that may.
pub(crate) fn may_pass(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io_may_pass(io))
}

/// A failure to open the store at `path`, for `why`.
pub(crate) fn cannot_open(path: &Path, why: impl Display, retryable: bool) -> Error {
    let message = format!("cannot open sled session store at {}: {why}", path.display());
    Error::Backend(BackendError::new(message, retryable))
}

/// An I/O failure of the file system while opening the store at `path`.
pub(crate) fn cannot_open_io(path: &Path, doing: &str, io: &std::io::Error) -> Error {
    cannot_open(path, format!("{doing}: {io}"), io_may_pass(io))
}

/// A setting of the builder that cannot work, named as its method is.
pub(crate) fn config(setting: &str, problem: impl Into<String>) -> Error {
    Error::Config(ConfigError::new(setting, problem))
}

/// An I/O error that may pass: the disk was busy, a call was interrupted or
/// timed out.
fn io_may_pass(io: &std::io::Error) -> bool {
    matches!(
        io.kind(),
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
