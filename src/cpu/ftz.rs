//! Flush-to-zero for the duration of a step. Trained weights make subnormal floats (below
//! 1.2e-38: tiny attention probabilities, tiny Adam moments) that x86 CPUs handle about
//! 100× slower than normal ones, which made whole steps ~2× slower. Setting MXCSR's FTZ
//! and DAZ bits treats them as zero, as PyTorch's `torch.set_flush_denormal(True)` does.
//! The bits are set on every thread of the rayon pool when a step starts and restored when
//! it ends, so code outside the engine is unaffected. No-op off x86_64 (wasm has none).

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::asm;

    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

    fn get() -> u32 {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit MXCSR register at the given address.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr
    }

    fn set(csr: u32) {
        // SAFETY: ldmxcsr loads MXCSR; only the FTZ/DAZ bits differ from the value read.
        unsafe { asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly)) };
    }

    fn all_threads(on: bool) {
        let f = move || {
            set(if on {
                get() | FTZ_DAZ
            } else {
                get() & !FTZ_DAZ
            })
        };
        f();
        rayon::broadcast(|_| f());
    }

    /// Sets FTZ/DAZ on this thread and the pool; restores the previous state on drop.
    pub struct FlushGuard {
        was_on: bool,
    }

    impl FlushGuard {
        // A guard: making one changes the FPU mode, which `Default` would hide.
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            let was_on = get() & FTZ_DAZ == FTZ_DAZ;
            if !was_on {
                all_threads(true);
            }
            FlushGuard { was_on }
        }
    }

    impl Drop for FlushGuard {
        fn drop(&mut self) {
            if !self.was_on {
                all_threads(false);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub struct FlushGuard;
    impl FlushGuard {
        // A guard: making one changes the FPU mode, which `Default` would hide.
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            FlushGuard
        }
    }
}

pub use imp::FlushGuard;
