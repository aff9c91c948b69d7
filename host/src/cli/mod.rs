//! The `cwpub` subcommands, one file each.

pub mod check;
pub mod health;
pub mod invoke;
pub mod logging;
pub mod new;
pub mod reload;
pub mod run;
pub mod test;
