//! Copies between host and device, and within the device, timed with CUDA events.
//!
//! - H2D: from pinned, write-combined host memory (the fastest source for the copy engines; the
//!   host only writes it);
//! - D2H: into pinned memory that is **not** write-combined, because the host reads what arrives;
//! - pageable H2D: from ordinary `Vec` memory, staged by the driver;
//! - D2D: `cuMemcpyDtoDAsync` within one GPU;
//! - bidirectional: an H2D and a D2H copy at once on two streams, joined by events.
//!
//! Sources hold a random pattern; the check compares every destination word with it.

use super::memory::{alloc, alloc_pinned, ensure_fits, free_bytes};
use super::{CudaDevice, EventTimer, NAME, driver_err};
use crate::backend::{Timed, TransferWorkload};
use crate::bench::transfer::{TransferKind, TransferSpec};
use crate::error::{Error, Result};
use crate::rng::mix64;
use cudarc::driver::sys::{self, CUevent_flags};
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, DevicePtr, PinnedHostSlice};
use std::ffi::c_void;
use std::sync::Arc;

/// Word `i` of every source buffer: random, never zero-heavy (some links compress zeros).
fn pattern(i: usize) -> u64 {
    mix64(0x7472_616E_7366_6572 ^ i as u64)
}

fn first_mismatch(got: &[u64], what: &str) -> Option<String> {
    got.iter()
        .enumerate()
        .find(|(i, w)| **w != pattern(*i))
        .map(|(i, w)| {
            format!(
                "{what}: word {i} of {} is {w:#018x}, expected {:#018x}",
                got.len(),
                pattern(i)
            )
        })
}

pub struct CudaTransfer {
    spec: TransferSpec,
    words: usize,
    stream: Arc<CudaStream>,
    /// Second stream, for the D2H half of bidirectional copies.
    stream2: Arc<CudaStream>,
    timer: EventTimer,
    /// Marks the end of the second stream's copies for the bidirectional join.
    mid: CudaEvent,
    pinned_src: Option<PinnedHostSlice<u64>>,
    pinned_dst: Option<PinnedHostSlice<u64>>,
    pageable_src: Option<Vec<u64>>,
    /// Device destination of H2D / D2D, or source of D2H.
    dev_a: CudaSlice<u64>,
    /// Device destination of D2D, or source of bidir's D2H half.
    dev_b: Option<CudaSlice<u64>>,
}

impl CudaTransfer {
    pub fn new(device: &CudaDevice, spec: TransferSpec) -> Result<CudaTransfer> {
        let words = (spec.bytes / 8) as usize;
        if words == 0 {
            return Err(Error::Usage("a transfer needs at least 8 bytes".into()));
        }
        ensure_fits(
            spec.device_bytes(),
            free_bytes(&device.ctx)?,
            &format!("transfer {}", spec.kind.name()),
        )?;
        let ctx = &device.ctx;
        let stream = device.stream.clone();
        let stream2 = ctx.new_stream().map_err(driver_err("new stream"))?;
        let host_pattern: Vec<u64> = (0..words).map(pattern).collect();
        let kind = spec.kind;

        let mut pinned_src = None;
        if matches!(kind, TransferKind::H2d | TransferKind::Bidir) {
            let mut p =
                alloc_pinned::<u64>(ctx, words, sys::CU_MEMHOSTALLOC_WRITECOMBINED, "H2D source")?;
            p.as_mut_slice()
                .map_err(driver_err("pinned source"))?
                .copy_from_slice(&host_pattern);
            pinned_src = Some(p);
        }
        let mut pinned_dst = None;
        if matches!(kind, TransferKind::D2h | TransferKind::Bidir) {
            let mut p = alloc_pinned::<u64>(ctx, words, 0, "D2H destination")?;
            p.as_mut_slice()
                .map_err(driver_err("pinned destination"))?
                .fill(0);
            pinned_dst = Some(p);
        }
        let mut dev_a = alloc::<u64>(&stream, words, "device buffer")?;
        if kind == TransferKind::D2h {
            stream
                .memcpy_htod(&host_pattern, &mut dev_a)
                .map_err(driver_err("upload source"))?;
        } else {
            stream
                .memset_zeros(&mut dev_a)
                .map_err(driver_err("memset"))?;
        }
        let dev_b = match kind {
            TransferKind::D2d => {
                // dev_a is the source here.
                stream
                    .memcpy_htod(&host_pattern, &mut dev_a)
                    .map_err(driver_err("upload source"))?;
                let mut b = alloc::<u64>(&stream, words, "D2D destination")?;
                stream.memset_zeros(&mut b).map_err(driver_err("memset"))?;
                Some(b)
            }
            TransferKind::Bidir => {
                let mut b = alloc::<u64>(&stream, words, "D2H source")?;
                stream
                    .memcpy_htod(&host_pattern, &mut b)
                    .map_err(driver_err("upload source"))?;
                Some(b)
            }
            _ => None,
        };
        let pageable_src = (kind == TransferKind::H2dPageable).then_some(host_pattern);
        stream.synchronize().map_err(driver_err("transfer setup"))?;
        let event = || {
            ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(driver_err("new event"))
        };
        Ok(CudaTransfer {
            spec,
            words,
            stream,
            stream2,
            timer: EventTimer::new(ctx)?,
            mid: event()?,
            pinned_src,
            pinned_dst,
            pageable_src,
            dev_a,
            dev_b,
        })
    }

    fn missing() -> Error {
        Error::backend(NAME, "transfer buffers were not prepared for this kind")
    }

    /// Enqueue one copy (both halves for bidir).
    fn enqueue(&mut self) -> Result<()> {
        let bytes = self.words * 8;
        let (dev_a, _g) = self.dev_a.device_ptr(&self.stream);
        let s1 = self.stream.cu_stream();
        let s2 = self.stream2.cu_stream();
        let host_src = match self.spec.kind {
            TransferKind::H2d | TransferKind::Bidir => Some(
                self.pinned_src
                    .as_ref()
                    .ok_or_else(Self::missing)?
                    .as_ptr()
                    .map_err(driver_err("pinned source"))? as *const c_void,
            ),
            TransferKind::H2dPageable => Some(
                self.pageable_src
                    .as_ref()
                    .ok_or_else(Self::missing)?
                    .as_ptr() as *const c_void,
            ),
            _ => None,
        };
        // SAFETY (all copies below): source and destination are live allocations of exactly
        // `bytes` bytes made in `new`; the host buffers outlive the stream work because `run_timed`
        // synchronises (through the end event) before returning, and nothing else touches them
        // while copies are in flight.
        match self.spec.kind {
            TransferKind::H2d | TransferKind::H2dPageable => {
                let src = host_src.ok_or_else(Self::missing)?;
                unsafe { sys::cuMemcpyHtoDAsync_v2(dev_a, src, bytes, s1) }
                    .result()
                    .map_err(driver_err("cuMemcpyHtoDAsync"))?;
            }
            TransferKind::D2h => {
                let dst = self.pinned_dst.as_mut().ok_or_else(Self::missing)?;
                let dst = dst.as_mut_ptr().map_err(driver_err("pinned destination"))?;
                unsafe { sys::cuMemcpyDtoHAsync_v2(dst as *mut c_void, dev_a, bytes, s1) }
                    .result()
                    .map_err(driver_err("cuMemcpyDtoHAsync"))?;
            }
            TransferKind::D2d => {
                let dst = self.dev_b.as_ref().ok_or_else(Self::missing)?;
                let (dst, _g) = dst.device_ptr(&self.stream);
                unsafe { sys::cuMemcpyDtoDAsync_v2(dst, dev_a, bytes, s1) }
                    .result()
                    .map_err(driver_err("cuMemcpyDtoDAsync"))?;
            }
            TransferKind::Bidir => {
                let src = host_src.ok_or_else(Self::missing)?;
                unsafe { sys::cuMemcpyHtoDAsync_v2(dev_a, src, bytes, s1) }
                    .result()
                    .map_err(driver_err("cuMemcpyHtoDAsync"))?;
                let dev_b = self.dev_b.as_ref().ok_or_else(Self::missing)?;
                let (dev_b, _g) = dev_b.device_ptr(&self.stream2);
                let dst = self.pinned_dst.as_mut().ok_or_else(Self::missing)?;
                let dst = dst.as_mut_ptr().map_err(driver_err("pinned destination"))?;
                unsafe { sys::cuMemcpyDtoHAsync_v2(dst as *mut c_void, dev_b, bytes, s2) }
                    .result()
                    .map_err(driver_err("cuMemcpyDtoHAsync"))?;
            }
        }
        Ok(())
    }
}

impl Timed for CudaTransfer {
    fn run_timed(&mut self, iterations: u32) -> Result<f64> {
        let bidir = self.spec.kind == TransferKind::Bidir;
        self.timer.begin(&self.stream)?;
        if bidir {
            self.stream2
                .wait(&self.timer.start)
                .map_err(driver_err("join streams"))?;
        }
        for _ in 0..iterations {
            self.enqueue()?;
        }
        if bidir {
            self.mid
                .record(&self.stream2)
                .map_err(driver_err("record"))?;
            self.stream
                .wait(&self.mid)
                .map_err(driver_err("join streams"))?;
        }
        self.timer.finish(&self.stream, "copy")
    }
}

impl TransferWorkload for CudaTransfer {
    fn implementation(&self) -> String {
        match self.spec.kind {
            TransferKind::H2d => "cuMemcpyHtoDAsync from pinned write-combined host memory",
            TransferKind::D2h => "cuMemcpyDtoHAsync into pinned (not write-combined) host memory",
            TransferKind::D2d => "cuMemcpyDtoDAsync within the device",
            TransferKind::Bidir => {
                "cuMemcpyHtoDAsync + cuMemcpyDtoHAsync concurrently on two streams, pinned host memory"
            }
            TransferKind::H2dPageable => "cuMemcpyHtoDAsync from pageable host memory (driver-staged)",
        }
        .into()
    }

    fn check(&mut self) -> Result<Option<String>> {
        self.stream
            .synchronize()
            .map_err(driver_err("synchronize"))?;
        self.stream2
            .synchronize()
            .map_err(driver_err("synchronize"))?;
        let kind = self.spec.kind;
        if matches!(
            kind,
            TransferKind::H2d | TransferKind::H2dPageable | TransferKind::Bidir
        ) {
            let got = self
                .stream
                .clone_dtoh(&self.dev_a)
                .map_err(driver_err("read back"))?;
            self.stream.synchronize().map_err(driver_err("read back"))?;
            if let Some(p) = first_mismatch(&got, "device destination") {
                return Ok(Some(p));
            }
        }
        if matches!(kind, TransferKind::D2h | TransferKind::Bidir) {
            let dst = self.pinned_dst.as_ref().ok_or_else(Self::missing)?;
            let got = dst.as_slice().map_err(driver_err("pinned destination"))?;
            if let Some(p) = first_mismatch(got, "host destination") {
                return Ok(Some(p));
            }
        }
        if kind == TransferKind::D2d {
            let dst = self.dev_b.as_ref().ok_or_else(Self::missing)?;
            let got = self
                .stream
                .clone_dtoh(dst)
                .map_err(driver_err("read back"))?;
            self.stream.synchronize().map_err(driver_err("read back"))?;
            if let Some(p) = first_mismatch(&got, "device destination") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_random_and_mismatches_are_named() {
        let words: Vec<u64> = (0..1000).map(pattern).collect();
        assert!(words.iter().all(|&w| w != 0));
        assert_eq!(first_mismatch(&words, "x"), None);
        let mut bad = words.clone();
        bad[777] ^= 1 << 40;
        let p = first_mismatch(&bad, "device destination").expect("mismatch");
        assert!(p.contains("word 777 of 1000"), "{p}");
    }
}
