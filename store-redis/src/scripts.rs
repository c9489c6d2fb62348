//! The Lua code: one Redis function per operation that needs one (`load`
//! and `was_rotated` are one plain `GET`/`GETRANGE`; `update` and
//! `overwrite` share one), in one function library. The sources are
//! `lua/*.lua`, each with a header comment naming its KEYS, ARGV and reply;
//! the library is `record.lua` (reading a header) + `index.lua` (owner
//! indexes on one server) + `shard_index.lua` (a shard's owner index on a
//! cluster) + each operation's body wrapped in `redis.register_function`.
//!
//! # Why each operation is atomic
//!
//! Redis runs a function to completion before it serves any other command,
//! so everything it reads and writes happens at one instant: the
//! linearization point of the operation. Redis does **not** roll back a
//! function that fails half way, so every function first reads and
//! validates everything it will touch (the header, the records it replaces,
//! the owner indexes) and only then writes; a damaged record stops it with a
//! `CORRUPT` error before any write. `delete` and `delete_by_owner` are the
//! exceptions: ending a session must work on a damaged record, so they
//! remove it without decoding it further.
//!
//! # Why they are cheap
//!
//! Redis is single threaded: its CPU per call bounds throughput. A function
//! reads only the 43-byte header (`GETRANGE`), and the owner only when the
//! header says there is one, never the data (except `rotate`, whose reply
//! carries the moved record). `create`, `update` and `overwrite` receive the
//! whole new record built by the client and write it with one `SET` (the
//! update function then patches version and `created_at` in place with one
//! `SETRANGE`); `touch` changes 8 header bytes with `SETRANGE` and the TTL
//! with `PEXPIREAT`. Owner indexes are touched only when the owner or the
//! expiry score changes, and their helpers are built only then. Numbers are
//! big-endian binary, read in Lua as two exact 32-bit halves
//! (`struct.unpack`), since Lua has only doubles.
//!
//! # FCALL, not EVALSHA
//!
//! Measured (`benches/src/bin/redis_client_cost.rs`, numbers in
//! `docs/decisions/0010-redis-one-string-record.md`): the same code costs
//! the server 10-17 % less as a function, because a library runs its top
//! level (the helpers' closures) once when loaded, where EVALSHA runs it on
//! every call. The price: a server that lost the library (a restart without
//! persistence, `FUNCTION FLUSH`) answers "Function not found", and the
//! store loads it and sends the call again, as `Script` does after
//! NOSCRIPT. The library's name carries a hash of its source, so two
//! versions of this crate on one server never replace each other's.

use std::sync::LazyLock;

const RECORD: &str = include_str!("../lua/record.lua");
const INDEX: &str = include_str!("../lua/index.lua");
const SHARD_INDEX: &str = include_str!("../lua/shard_index.lua");

/// The operations' bodies, by function name.
const BODIES: [(&str, &str); 9] = [
    ("create", include_str!("../lua/create.lua")),
    ("write", include_str!("../lua/write.lua")),
    ("touch", include_str!("../lua/touch.lua")),
    ("rotate", include_str!("../lua/rotate.lua")),
    ("delete", include_str!("../lua/delete.lua")),
    ("list_by_owner", include_str!("../lua/list_by_owner.lua")),
    ("delete_by_owner", include_str!("../lua/delete_by_owner.lua")),
    ("seal", include_str!("../lua/seal.lua")),
    ("retire", include_str!("../lua/retire.lua")),
];

/// The library: its source (for `FUNCTION LOAD`) and the names of its
/// functions, `<name>_<operation>`.
pub(crate) struct Library {
    pub(crate) source: String,
    pub(crate) create: String,
    pub(crate) write: String,
    pub(crate) touch: String,
    pub(crate) rotate: String,
    pub(crate) delete: String,
    pub(crate) list_by_owner: String,
    pub(crate) delete_by_owner: String,
    pub(crate) seal: String,
    pub(crate) retire: String,
}

/// Built once per process.
pub(crate) static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    let mut code = [RECORD, INDEX, SHARD_INDEX].concat();
    for (name, body) in BODIES {
        code.push_str(&format!(
            "redis.register_function('@@_{name}', function(KEYS, ARGV)\n{body}\nend)\n"
        ));
    }
    // The name: a hash of the code, so that a changed library is a new one.
    let sha = redis::Script::new(&code).get_hash().to_owned();
    let name = format!("store_redis_{}", &sha[..16]);
    let source = format!("#!lua name={name}\n{}", code.replace("@@", &name));
    let f = |op: &str| format!("{name}_{op}");
    Library {
        create: f("create"),
        write: f("write"),
        touch: f("touch"),
        rotate: f("rotate"),
        delete: f("delete"),
        list_by_owner: f("list_by_owner"),
        delete_by_owner: f("delete_by_owner"),
        seal: f("seal"),
        retire: f("retire"),
        source,
    }
});
