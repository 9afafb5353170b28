// SPDX-License-Identifier: GPL-2.0

//! What bpf-runner (in the guest) and xtask (on the host) share, one
//! definition for both so that they cannot disagree: the format of the
//! benchmark's results file, the test-name globs of `TESTS=`/`--filter`
//! and `tools/config/skips.allow`, and where host tests find a kernel tree.

pub mod bench;
pub mod glob;
pub mod ktree;
