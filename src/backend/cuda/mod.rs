//! The CUDA backend (cudarc 0.19, libraries opened at run time). The only place cudarc is named.
pub mod kernels;
