//! Large host arrays for the CPU backend: zeroed, aligned to 2 MiB and advised to use transparent
//! huge pages.
//!
//! Why: with 4 KiB pages a 64 MiB GEMM operand spans 16,384 pages and the packing loops of a
//! GEMM miss the TLB constantly. Measured on a 2-core AMD EPYC (Zen 4) VM with THP in `madvise`
//! mode: matrixmultiply's dgemm at 3072³ went from 78–89 to 88–97 GFLOPS with huge pages, which
//! is what numpy gets by advising its own large arrays the same way. STREAM arrays get the same
//! treatment so bandwidth, not page walks, is what is measured.

use crate::error::{Error, Result};
use std::alloc::Layout;
use std::ptr::NonNull;

const HUGE_PAGE_BYTES: usize = 2 << 20;

/// Element types for which all-zero bytes are a valid value (so zeroed memory is initialised).
pub trait ZeroIsValid: Copy + Send + Sync + 'static {}
impl ZeroIsValid for f32 {}
impl ZeroIsValid for f64 {}

/// A zero-initialised, 2 MiB-aligned array of `T`, owned like a `Vec` but never resized.
pub struct HostArray<T: ZeroIsValid> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
}

// SAFETY: HostArray owns its allocation exclusively, like Vec<T>; T is Send + Sync.
unsafe impl<T: ZeroIsValid> Send for HostArray<T> {}
// SAFETY: shared access only hands out &[T].
unsafe impl<T: ZeroIsValid> Sync for HostArray<T> {}

impl<T: ZeroIsValid> HostArray<T> {
    /// Allocate `len` zeroed elements; `what` names the array in the error message.
    pub fn zeroed(len: usize, what: &str) -> Result<Self> {
        let too_big = || {
            Error::backend(
                "cpu",
                format!(
                    "cannot allocate {what}: {} MiB asked for; use a smaller --suite",
                    len.saturating_mul(std::mem::size_of::<T>()) >> 20
                ),
            )
        };
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .filter(|&b| b > 0)
            .ok_or_else(too_big)?;
        let align = if bytes >= HUGE_PAGE_BYTES {
            HUGE_PAGE_BYTES
        } else {
            std::mem::align_of::<T>().max(64)
        };
        let layout = Layout::from_size_align(bytes, align).map_err(|_| too_big())?;
        // SAFETY: layout has a non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
        let ptr = NonNull::new(raw).ok_or_else(too_big)?;
        advise_huge_pages(raw as *mut u8, bytes);
        Ok(HostArray { ptr, len, layout })
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    if bytes >= HUGE_PAGE_BYTES {
        // SAFETY: the range is exactly our own live allocation. madvise is only advice: if the
        // kernel declines (THP disabled), the memory stays valid with ordinary pages.
        unsafe {
            libc::madvise(ptr as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _bytes: usize) {}

impl<T: ZeroIsValid> std::ops::Deref for HostArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: ptr points to len initialised (zeroed, ZeroIsValid) elements we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroIsValid> std::ops::DerefMut for HostArray<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for Deref, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroIsValid> Drop for HostArray<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with exactly this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_zeroed_aligned_and_writable() {
        let mut big = HostArray::<f64>::zeroed(3 << 20, "test").expect("24 MiB");
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE_BYTES, 0);
        assert!(big.iter().all(|&x| x == 0.0));
        big[12345] = 1.5;
        assert_eq!(big.iter().sum::<f64>(), 1.5);
        let small = HostArray::<f32>::zeroed(3, "test").expect("tiny");
        assert_eq!(small.len(), 3);
        assert_eq!(small.as_ptr() as usize % 64, 0);
    }

    #[test]
    fn impossible_sizes_are_errors() {
        assert!(HostArray::<f64>::zeroed(0, "empty").is_err());
        let e = HostArray::<f64>::zeroed(usize::MAX / 4, "huge")
            .err()
            .expect("too big");
        assert!(e.to_string().contains("huge"), "{e}");
    }
}
