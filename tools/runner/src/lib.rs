//! bpf-runner: runs the BPF selftests of `selftests/progs` inside the test VM.
//!
//! Annotated tests mirror the kernel's test_loader: expectations are BTF decl
//! tags (`selftests/include/bpf_misc.h`) read back from each object, every
//! program is loaded on its own and its verdict, verifier log and return value
//! are checked. Runtime tests are Rust functions (`runtime`) that load a
//! program and drive it with BPF_PROG_TEST_RUN.
//!
//! The library part exists so that the host-side integration tests can reach
//! the parsers; `main.rs` only wires things together.

pub mod bench;
pub mod btf_tags;
pub mod cli;
pub mod dmesg;
pub mod filter;
pub mod libbpf;
pub mod loader;
pub mod matcher;
pub mod modules;
pub mod report;
pub mod runtime;
pub mod spec;
pub mod suite;
