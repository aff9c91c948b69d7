//! The `cwpub` subcommands, one file each.

pub mod invoke;
