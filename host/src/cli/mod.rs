//! The `cwpub` subcommands, one file each.

pub mod check;
pub mod invoke;
pub mod logging;
pub mod new;
pub mod run;
pub mod test;
