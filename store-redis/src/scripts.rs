//! The Lua scripts, one per operation that needs one (`load` and
//! `was_rotated` are one plain `GET`/`GETRANGE`; `update` and `overwrite`
//! share one). The sources are `lua/*.lua`, each with a header comment
//! naming its KEYS, ARGV and reply; every script is sent as `record.lua`
//! (reading a header) + `index.lua` (owner indexes) + its own body.
//!
//! # Why each operation is atomic
//!
//! Redis runs a script to completion before it serves any other command, so
//! everything a script reads and writes happens at one instant: the
//! linearization point of the operation. Redis does **not** roll a script
//! back when it fails half way, so every script first reads and validates
//! everything it will touch (the header, the records it replaces, the owner
//! indexes) and only then writes; a damaged record stops it with a
//! `CORRUPT` error before any write. `delete` and `delete_by_owner` are the
//! exceptions: ending a session must work on a damaged record, so they
//! remove it without decoding it further.
//!
//! # Why they are cheap
//!
//! Redis is single threaded: its CPU per call bounds throughput. A script
//! reads only the 43-byte header (`GETRANGE`), and the owner only when the
//! header says there is one, never the data (except `rotate`, whose reply
//! carries the moved record). `create`, `update` and `overwrite` receive the
//! whole new record built by the client and write it with one
//! `SET ... PXAT` (the update scripts then patch version and `created_at`
//! in place with one `SETRANGE`); `touch` changes 8 header bytes with
//! `SETRANGE` and the TTL with `PEXPIREAT`. Owner indexes are touched only
//! when the owner or the expiry score changes, and their helpers are built
//! only then. Numbers are big-endian binary, read in Lua as two exact 32-bit
//! halves (`struct.unpack`), since Lua has only doubles.
//!
//! # EVALSHA, not FCALL
//!
//! Measured (see `docs/decisions/0010-redis-one-string-record.md`): the
//! difference is within noise for these scripts, and EVALSHA reloads itself
//! after a restart (NOSCRIPT), while a function library must be loaded again
//! by hand.

use std::sync::LazyLock;

/// One script: its source and SHA-1, for EVALSHA.
pub(crate) struct Lua {
    pub(crate) source: String,
    pub(crate) sha: String,
}

impl Lua {
    fn new(body: &str) -> Self {
        let source = [RECORD, INDEX, body].concat();
        let sha = redis::Script::new(&source).get_hash().to_owned();
        Self { source, sha }
    }
}

const RECORD: &str = include_str!("../lua/record.lua");
const INDEX: &str = include_str!("../lua/index.lua");

/// The scripts of one process, hashed once.
pub(crate) struct Scripts {
    pub(crate) create: Lua,
    pub(crate) write: Lua,
    pub(crate) touch: Lua,
    pub(crate) rotate: Lua,
    pub(crate) delete: Lua,
    pub(crate) list_by_owner: Lua,
    pub(crate) delete_by_owner: Lua,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Lua::new(include_str!("../lua/create.lua")),
    write: Lua::new(include_str!("../lua/write.lua")),
    touch: Lua::new(include_str!("../lua/touch.lua")),
    rotate: Lua::new(include_str!("../lua/rotate.lua")),
    delete: Lua::new(include_str!("../lua/delete.lua")),
    list_by_owner: Lua::new(include_str!("../lua/list_by_owner.lua")),
    delete_by_owner: Lua::new(include_str!("../lua/delete_by_owner.lua")),
});
