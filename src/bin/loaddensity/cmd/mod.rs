//! One file per subcommand; `main.rs` dispatches to them.

pub(crate) mod bench;
pub(crate) mod compare;
pub(crate) mod fmt;
pub(crate) mod import_har;
pub(crate) mod init;
pub(crate) mod legacy;
pub(crate) mod lint;
pub(crate) mod merge;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod target;
pub(crate) mod validate;
pub(crate) mod worker;
