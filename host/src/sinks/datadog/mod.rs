//! The DataDog destination's parts that do not depend on the delivery core:
//! where to send ([`site`]), with which key ([`key`]), how `json-log` events
//! become log items ([`logs`]) and `emf` documents become metric series
//! ([`series`]), how a batch becomes requests within DataDog's limits
//! ([`encode`]), how one request is sent ([`service`]) and how its answer is
//! classified ([`retry`]); [`window`] is the rule for the time windows
//! DataDog accepts data in.

pub mod encode;
pub mod key;
pub mod logs;
pub mod retry;
pub mod series;
pub mod service;
pub mod site;
pub mod window;
