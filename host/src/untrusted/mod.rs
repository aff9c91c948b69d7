//! What parties the host does not trust — guests above all, but also remote
//! services — can make the host print. Two rules live here and nowhere else:
//!
//! * [`GuestText`] (`text`): untrusted text is stored capped and only ever
//!   rendered through one function, which makes every control character visible
//!   (never interpreted) and cuts the rendering at [`MAX_RENDERED_BYTES`] with
//!   a marker saying how much was cut. A forged log line, a terminal escape
//!   sequence or an 8 MiB message cannot get through it.
//! * [`LogBudget`] (`budget`): how many log records, and how many bytes, one
//!   job may make the host write per minute; what is over is suppressed and
//!   counted.
//!
//! Nothing here depends on any stage, so every stage can use it.

mod budget;
mod text;

pub use budget::{BYTES_PER_MINUTE, LogBudget, RECORDS_PER_MINUTE};
pub use text::{GuestText, Keep, MAX_RENDERED_BYTES, escape};
