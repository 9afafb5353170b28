// SPDX-License-Identifier: GPL-2.0

//! Compiles the shared algorithm with `cfg(rqspin_bench)`: the unbounded
//! plain queued lock the benchmark compares against exists only here, never
//! in the kernel module, which builds the same files without this cfg.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rqspin_bench)");
    println!("cargo::rustc-cfg=rqspin_bench");
    println!("cargo::rerun-if-changed=build.rs");
}
