//! How sled's errors become the contract's [`Error`].

use session_core::Error;

/// A sled failure during an operation: an I/O error that may pass (the disk
/// was busy, a call was interrupted) is transient; anything else, including
/// corruption that sled detected in its own files, is permanent.
pub(crate) fn backend(e: sled::Error) -> Error {
    match e {
        sled::Error::Io(io) => {
            let transient = matches!(
                io.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
            let message = format!("sled I/O error: {io}");
            if transient {
                Error::backend_transient(message)
            } else {
                Error::backend_permanent(message)
            }
        }
        sled::Error::Corruption { at, .. } => {
            Error::backend_permanent(format!("sled detected corruption in its files (at {at:?})"))
        }
        other => Error::backend_permanent(format!("sled error: {other}")),
    }
}
