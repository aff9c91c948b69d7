//! Lean AWS API clients for the calls the host makes on every delivery, where
//! the SDK's general-purpose request pipeline costs more than the request.
//!
//! * [`put_log_events`] — CloudWatch Logs `PutLogEvents` over the SDK's own
//!   HTTP client, signed with SigV4, with credentials from the aws-config
//!   default chain behind its identity cache.

pub mod put_log_events;
