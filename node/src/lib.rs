//! tincan-node: the daemon behind the `tincan` binary.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
