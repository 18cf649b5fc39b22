//! Evidence: provenance in every result, and Ed25519 signatures a third party can check.
//!
//! - [`canonical`]: RFC 8785 (JCS) canonical JSON, the bytes a signature covers.
//! - [`sign`]: key files, signing, verification ([`verify_value`], [`load_trusted_keys`]).
//! - [`provenance`]: binary and kernel hashes, libraries, device and cloud instance identities.
//!
//! docs/evidence.md documents the formats and how to verify a result without gpuaudit.

pub mod canonical;
pub mod provenance;
pub mod sign;

pub use provenance::Provenance;
pub use sign::{
    KeyId, PublicKey, Signer, TrustedKeys, VerifyError, load_trusted_keys, verify_text,
    verify_value,
};
