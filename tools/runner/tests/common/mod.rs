//! What the host tests share: where a 6.12 kernel source tree is.

use std::sync::LazyLock;

/// A 6.12 kernel source tree (see `runner_shared::ktree`).
pub fn ksrc() -> String {
    runner_shared::ktree::kernel_tree("tools/include/uapi/linux/bpf.h")
        .display()
        .to_string()
}

/// The tree's UAPI headers, for compiling BPF programs.
pub static KERNEL_UAPI: LazyLock<String> =
    LazyLock::new(|| format!("{}/tools/include/uapi", ksrc()));
