//! Device and pinned-host allocation that fails with a message, not a panic or a bare error code.

use super::{NAME, driver_err};
use crate::error::{Error, Result};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr, PinnedHostSlice};
use std::sync::Arc;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Allocate `len` elements on the device, uninitialised. The caller fills them before reading.
pub fn alloc<T: DeviceRepr>(
    stream: &Arc<CudaStream>,
    len: usize,
    what: &str,
) -> Result<CudaSlice<T>> {
    let bytes = (len as u64).saturating_mul(std::mem::size_of::<T>() as u64);
    // SAFETY: the memory is uninitialised; every caller writes it (fill kernel or copy) before
    // any read, and the size is computed without overflow (checked above via saturating_mul and
    // by cudarc).
    unsafe { stream.alloc::<T>(len) }.map_err(|e| {
        let free = stream
            .context()
            .mem_get_info()
            .map(|(free, _)| mib(free as u64))
            .unwrap_or_else(|_| "unknown".into());
        Error::backend(
            NAME,
            format!(
                "cannot allocate {what}: {} asked for, {free} of device memory free ({e:?})",
                mib(bytes)
            ),
        )
    })
}

/// Allocate `len` elements of page-locked host memory with `flags` (0: ordinary pinned memory
/// that the host reads fast; `CU_MEMHOSTALLOC_WRITECOMBINED`: fastest for H2D, slow to read).
pub fn alloc_pinned<T: DeviceRepr>(
    ctx: &Arc<CudaContext>,
    len: usize,
    flags: u32,
    what: &str,
) -> Result<PinnedHostSlice<T>> {
    let bytes = (len as u64).saturating_mul(std::mem::size_of::<T>() as u64);
    // SAFETY: uninitialised host memory; callers write it before reading.
    unsafe { ctx.alloc_pinned_with_flags::<T>(len, flags) }.map_err(|e| {
        Error::backend(
            NAME,
            format!(
                "cannot allocate {what}: {} of pinned host memory asked for ({e:?})",
                mib(bytes)
            ),
        )
    })
}

/// Bytes free on the device now.
pub fn free_bytes(ctx: &Arc<CudaContext>) -> Result<u64> {
    ctx.mem_get_info()
        .map(|(free, _)| free as u64)
        .map_err(driver_err("cuMemGetInfo"))
}

/// Error unless `bytes` fit in `free` with headroom (10 %, at least 256 MiB, for the library
/// workspaces and the context's own needs).
pub fn ensure_fits(bytes: u64, free: u64, what: &str) -> Result<()> {
    let headroom = (free / 10).max(256 << 20);
    if bytes.saturating_add(headroom) > free {
        return Err(Error::backend(
            NAME,
            format!(
                "{what} needs {} of device memory but only {} is free (keeping {} headroom)",
                mib(bytes),
                mib(free),
                mib(headroom)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_check_names_bytes_asked_and_free() {
        assert!(ensure_fits(1 << 30, 80 << 30, "x").is_ok());
        let e = ensure_fits(60 << 30, 40 << 30, "STREAM arrays").expect_err("does not fit");
        let text = e.to_string();
        assert!(
            text.contains("61440.0 MiB") && text.contains("40960.0 MiB"),
            "{text}"
        );
    }
}
