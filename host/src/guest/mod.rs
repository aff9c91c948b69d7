//! Guest runtime (in progress).
