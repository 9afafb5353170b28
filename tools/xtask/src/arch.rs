//! The architectures the pipeline builds for and boots.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

impl Arch {
    /// Name used in paths, reports and `vng --arch`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// `ARCH=` for kbuild.
    pub fn kbuild(self) -> &'static str {
        self.name()
    }

    /// The bootable image, relative to the build directory.
    pub fn image(self) -> &'static str {
        match self {
            Arch::X86_64 => "arch/x86/boot/bzImage",
            Arch::Arm64 => "arch/arm64/boot/Image",
        }
    }

    /// `__TARGET_ARCH_*` for BPF programs that read `pt_regs`.
    pub fn bpf_target_define(self) -> &'static str {
        match self {
            Arch::X86_64 => "-D__TARGET_ARCH_x86",
            Arch::Arm64 => "-D__TARGET_ARCH_arm64",
        }
    }

    /// Debian multiarch include directory (for `asm/types.h`): the native
    /// one if this arch's libc headers are installed, else the cross
    /// toolchain's (`libc6-dev-<arch>-cross`, from `gcc-<triple>`).
    pub fn multiarch_include(self) -> &'static str {
        let (native, cross) = match self {
            Arch::X86_64 => (
                "/usr/include/x86_64-linux-gnu",
                "/usr/x86_64-linux-gnu/include",
            ),
            Arch::Arm64 => (
                "/usr/include/aarch64-linux-gnu",
                "/usr/aarch64-linux-gnu/include",
            ),
        };
        if std::path::Path::new(native).join("asm/types.h").exists() {
            native
        } else {
            cross
        }
    }

    /// The architecture this machine runs.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }
}
