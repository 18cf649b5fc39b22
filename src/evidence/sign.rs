//! Ed25519 keys and signatures over the canonical form of a result.
//!
//! Key files are PEM, so anyone can inspect them with OpenSSL (`openssl pkey -in KEY -text`):
//! the private key is PKCS#8 (`-----BEGIN PRIVATE KEY-----`, RFC 8410), the public key
//! SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`). The private key file is created with mode
//! 0600 from its first byte (a temporary file opened with that mode, then hard-linked into place,
//! which also refuses to overwrite an existing key), and a private key whose mode lets group or
//! others read it is refused, as ssh does.
//!
//! A key's id is the first 16 hex digits of SHA-256 over its 32 raw public-key bytes.
//!
//! The signature block, added as the result's top-level `"signature"` member:
//! ```json
//! "signature": { "algorithm": "ed25519", "key_id": "…16 hex…", "public_key": "…64 hex…",
//!                "canonicalization": "RFC 8785 (JCS)", "value": "…128 hex…" }
//! ```
//! `value` is the Ed25519 signature (RFC 8032, pure Ed25519) of the canonical bytes
//! ([`super::canonical`]) of the whole result with the `signature` member removed. Verification
//! uses `verify_strict` (rejects small-order keys and malleable signatures).

use super::canonical::{canonicalize, parse_strict};
use crate::error::{Error, Result};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const ALGORITHM: &str = "ed25519";
pub const CANONICALIZATION: &str = "RFC 8785 (JCS)";
/// The member of a result that holds the signature block.
pub const FIELD: &str = "signature";

/// First 16 hex digits of SHA-256 over the raw public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key that may verify results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Where it was read from, for messages; empty when built in memory.
    pub origin: String,
}

impl PublicKey {
    pub fn id(&self) -> KeyId {
        key_id(&self.key)
    }

    pub fn to_hex(&self) -> String {
        hex(self.key.as_bytes())
    }

    /// Read a PEM public key (SubjectPublicKeyInfo) file.
    pub fn load(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PublicKey::from_pem(&text, &path.display().to_string())
    }

    pub fn from_pem(text: &str, origin: &str) -> Result<PublicKey> {
        if text.contains("PRIVATE KEY") {
            return Err(Error::Usage(format!(
                "{origin}: holds a private key; give the public key (the .pub file written by keygen)"
            )));
        }
        let key = VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
            Error::Usage(format!(
                "{origin}: not an Ed25519 public key in PEM (\"BEGIN PUBLIC KEY\"): {e}"
            ))
        })?;
        Ok(PublicKey {
            key,
            origin: origin.into(),
        })
    }
}

/// A private key loaded for signing. `Debug` shows only the key id.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer(key {})", self.key_id())
    }
}

impl Signer {
    pub fn key_id(&self) -> KeyId {
        key_id(&self.key.verifying_key())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            origin: String::new(),
        }
    }

    /// Read a PKCS#8 PEM private key, refusing one that group or others may read.
    pub fn load(path: &Path) -> Result<Signer> {
        check_private_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| {
            Error::Usage(format!(
                "{}: not an Ed25519 private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\", as written by gpuaudit keygen): {e}",
                path.display()
            ))
        })?;
        Ok(Signer { key })
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Signer> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            Error::Environment(format!("no random source to generate a key from: {e}"))
        })?;
        Ok(Signer {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Write the private key to `path` (mode 0600) and the public key to `path.pub`; refuses to
    /// overwrite either. Returns the public key's path.
    pub fn write_pair(&self, path: &Path) -> Result<PathBuf> {
        let pub_path = public_path(path);
        for p in [path, pub_path.as_path()] {
            if p.exists() {
                return Err(Error::Usage(format!(
                    "{} exists; refusing to overwrite a key (remove it or choose another --out)",
                    p.display()
                )));
            }
        }
        let private = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Usage(format!("cannot encode the private key: {e}")))?;
        let public = self
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::Usage(format!("cannot encode the public key: {e}")))?;
        create_new_with_mode(path, private.as_bytes(), 0o600)?;
        create_new_with_mode(&pub_path, public.as_bytes(), 0o644)?;
        Ok(pub_path)
    }

    /// Sign a result given as a JSON object: remove any old `signature`, canonicalise, sign, and
    /// add the new signature block.
    pub fn sign_value(&self, value: &mut Value) -> Result<()> {
        let Value::Object(map) = value else {
            return Err(Error::Usage("only a JSON object can be signed".into()));
        };
        map.remove(FIELD);
        let bytes = canonicalize(value);
        let signature = ed25519_dalek::Signer::sign(&self.key, &bytes);
        let block = SignatureBlock {
            algorithm: ALGORITHM.into(),
            key_id: self.key_id().0,
            public_key: hex(self.key.verifying_key().as_bytes()),
            canonicalization: CANONICALIZATION.into(),
            value: hex(&signature.to_bytes()),
        };
        let block = serde_json::to_value(block)
            .map_err(|e| Error::Usage(format!("cannot serialise the signature: {e}")))?;
        if let Value::Object(map) = value {
            map.insert(FIELD.into(), block);
        }
        Ok(())
    }

    /// The signed, pretty-printed JSON of a run result.
    pub fn sign_result(&self, result: &crate::result::RunResult) -> Result<String> {
        let mut value = serde_json::to_value(result)
            .map_err(|e| Error::Usage(format!("cannot serialise the result: {e}")))?;
        self.sign_value(&mut value)?;
        serde_json::to_string_pretty(&value)
            .map_err(|e| Error::Usage(format!("cannot serialise the result: {e}")))
    }
}

/// `KEY` → `KEY.pub`.
pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureBlock {
    pub algorithm: String,
    pub key_id: String,
    pub public_key: String,
    pub canonicalization: String,
    pub value: String,
}

/// Why a result does not verify. Each message says what a reader should conclude.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a valid JSON result (truncated or altered?): {0}")]
    Malformed(String),
    #[error("the result is not signed (no \"signature\" member)")]
    Unsigned,
    #[error("the signature block is malformed: {0}")]
    BadBlock(String),
    #[error("signed by key {key_id}, which is not trusted here (trusted: {trusted})")]
    UntrustedKey { key_id: KeyId, trusted: String },
    #[error(
        "the signature by key {key_id} does not match the content: the result was changed after it was signed"
    )]
    ContentChanged { key_id: KeyId },
}

/// Verify result text: strict parse (duplicate member names rejected), then [`verify_value`].
pub fn verify_text(text: &str, trusted: &[PublicKey]) -> std::result::Result<KeyId, VerifyError> {
    let value = parse_strict(text).map_err(|e| {
        let what = if e.is_eof() {
            "ends before the JSON does"
        } else {
            "invalid JSON"
        };
        VerifyError::Malformed(format!(
            "{what} at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    verify_value(&value, trusted)
}

/// Check that `value` carries a valid signature by one of `trusted`; returns the signer's key id.
///
/// The value should come from [`parse_strict`] (or [`verify_text`]) so that a file with duplicate
/// member names cannot verify.
pub fn verify_value(
    value: &Value,
    trusted: &[PublicKey],
) -> std::result::Result<KeyId, VerifyError> {
    let Value::Object(map) = value else {
        return Err(VerifyError::Malformed("not a JSON object".into()));
    };
    let block = map.get(FIELD).ok_or(VerifyError::Unsigned)?;
    let block: SignatureBlock =
        serde_json::from_value(block.clone()).map_err(|e| VerifyError::BadBlock(e.to_string()))?;
    if block.algorithm != ALGORITHM {
        return Err(VerifyError::BadBlock(format!(
            "algorithm \"{}\"; this gpuaudit verifies \"{ALGORITHM}\"",
            block.algorithm
        )));
    }
    if block.canonicalization != CANONICALIZATION {
        return Err(VerifyError::BadBlock(format!(
            "canonicalization \"{}\"; this gpuaudit uses \"{CANONICALIZATION}\"",
            block.canonicalization
        )));
    }
    let key_bytes: [u8; 32] = unhex(&block.public_key)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VerifyError::BadBlock("public_key is not 64 hex digits".into()))?;
    let signer = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|e| VerifyError::BadBlock(format!("public_key is not an Ed25519 key: {e}")))?;
    let signer_id = key_id(&signer);
    if block.key_id != signer_id.0 {
        return Err(VerifyError::BadBlock(format!(
            "key_id {} does not belong to public_key (whose id is {signer_id})",
            block.key_id
        )));
    }
    // Trust is decided by the key bytes, never by the id the file claims.
    let Some(key) = trusted.iter().find(|k| k.key == signer) else {
        let ids: Vec<String> = trusted.iter().map(|k| k.id().0).collect();
        return Err(VerifyError::UntrustedKey {
            key_id: signer_id,
            trusted: if ids.is_empty() {
                "none".into()
            } else {
                ids.join(", ")
            },
        });
    };
    let sig_bytes: [u8; 64] = unhex(&block.value)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VerifyError::BadBlock("value is not 128 hex digits".into()))?;
    let signature = Signature::from_bytes(&sig_bytes);
    let mut unsigned = map.clone();
    unsigned.remove(FIELD);
    let bytes = canonicalize(&Value::Object(unsigned));
    key.key
        .verify_strict(&bytes, &signature)
        .map_err(|_| VerifyError::ContentChanged {
            key_id: signer_id.clone(),
        })?;
    Ok(signer_id)
}

/// Public keys read from a trusted-keys folder, and the files that were not used (with why).
#[derive(Debug, Default)]
pub struct TrustedKeys {
    pub keys: Vec<PublicKey>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// Read every `*.pub` and `*.pem` file of `dir` as a public key (sorted by name). A file that is
/// not a public key is listed in `skipped`; a folder with no usable key is an error, since
/// trusting nobody would reject every result for a reason unrelated to the results.
pub fn load_trusted_keys(dir: &Path) -> Result<TrustedKeys> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "pub" || x == "pem"))
        .collect();
    paths.sort();
    let mut trusted = TrustedKeys::default();
    for path in paths {
        match PublicKey::load(&path) {
            Ok(k) => {
                if !trusted.keys.iter().any(|t| t.key == k.key) {
                    trusted.keys.push(k);
                }
            }
            Err(e) => trusted.skipped.push((path, e.to_string())),
        }
    }
    if trusted.keys.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no Ed25519 public key (*.pub or *.pem, PEM \"BEGIN PUBLIC KEY\") found",
            dir.display()
        )));
    }
    Ok(trusted)
}

fn key_id(key: &VerifyingKey) -> KeyId {
    KeyId(hex(&Sha256::digest(key.as_bytes())[..8]))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(unix)]
fn check_private_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "private key {} has mode {mode:04o}: group or others may read it; refusing to use it (run: chmod 600 {})",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

/// Create `path` with `bytes` and `mode`, atomically and without replacing anything: write a
/// temporary file opened with the mode (so the secret is never readable by others, not even for
/// an instant), flush it to disk, then hard-link it to `path` (fails if `path` exists).
fn create_new_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = crate::result::temp_path_beside(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let write = || -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    };
    let outcome = write();
    let _ = std::fs::remove_file(&tmp);
    outcome.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(signer: &Signer) -> Value {
        let mut v = serde_json::json!({
            "schema": "gpuaudit.result/v1",
            "seed": 18446744073709551557u64,
            "measurements": [{"median": 790.75, "samples": [1.5, 2.25e-7]}],
            "name": "é \"quoted\"",
        });
        signer.sign_value(&mut v).expect("signs");
        v
    }

    #[test]
    fn sign_then_verify_and_reordering_keeps_it_valid() {
        let s = Signer::generate().expect("key");
        let v = signed(&s);
        assert_eq!(verify_value(&v, &[s.public_key()]), Ok(s.key_id()));
        // Same content, other member order and whitespace.
        let reordered =
            r#"{"name":"é \"quoted\"","measurements":[{"samples":[1.5,2.25e-7],"median":790.75}],"#
                .to_string()
                + &format!(
                    "\"signature\": {},\n \"seed\": 18446744073709551557, \"schema\":\"gpuaudit.result/v1\"}}",
                    serde_json::to_string(&v["signature"]).expect("json")
                );
        assert_eq!(verify_text(&reordered, &[s.public_key()]), Ok(s.key_id()));
    }

    #[test]
    fn any_change_is_detected() {
        let s = Signer::generate().expect("key");
        let trusted = [s.public_key()];
        let v = signed(&s);
        let changed = VerifyError::ContentChanged { key_id: s.key_id() };
        let mut m = v.clone();
        m["measurements"][0]["median"] = serde_json::json!(790.76);
        assert_eq!(verify_value(&m, &trusted), Err(changed.clone()));
        let mut m = v.clone();
        m["seed"] = serde_json::json!(18446744073709551556u64);
        assert_eq!(verify_value(&m, &trusted), Err(changed.clone()));
        let mut m = v.clone();
        m["extra"] = serde_json::json!(null);
        assert_eq!(verify_value(&m, &trusted), Err(changed.clone()));
        let mut m = v.clone();
        m.as_object_mut().expect("object").remove("name");
        assert_eq!(verify_value(&m, &trusted), Err(changed));
        let mut m = v.clone();
        m.as_object_mut().expect("object").remove("signature");
        assert_eq!(verify_value(&m, &trusted), Err(VerifyError::Unsigned));
        let text = serde_json::to_string(&v).expect("json");
        let e = verify_text(&text[..text.len() - 3], &trusted).expect_err("truncated");
        assert!(e.to_string().contains("ends before the JSON does"), "{e}");
    }

    #[test]
    fn another_key_is_named_and_a_forged_block_is_refused() {
        let s = Signer::generate().expect("key");
        let other = Signer::generate().expect("key");
        let v = signed(&s);
        let e = verify_value(&v, &[other.public_key()]).expect_err("untrusted");
        assert!(e.to_string().contains(&s.key_id().0), "{e}");
        assert!(e.to_string().contains(&other.key_id().0), "{e}");
        // A file claiming the trusted key's id over another public key.
        let mut forged = signed(&other);
        forged["signature"]["key_id"] = serde_json::json!(s.key_id().0);
        let e = verify_value(&forged, &[s.public_key()]).expect_err("forged");
        assert!(matches!(e, VerifyError::BadBlock(_)), "{e}");
        // Someone else's signature over a trusted key: content check fails.
        let mut swapped = signed(&other);
        swapped["signature"]["public_key"] = serde_json::json!(s.public_key().to_hex());
        swapped["signature"]["key_id"] = serde_json::json!(s.key_id().0);
        assert_eq!(
            verify_value(&swapped, &[s.public_key()]),
            Err(VerifyError::ContentChanged { key_id: s.key_id() })
        );
    }

    #[test]
    fn key_files_round_trip_and_loose_permissions_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let s = Signer::generate().expect("key");
        let pub_path = s.write_pair(&path).expect("writes");
        assert!(s.write_pair(&path).is_err(), "never overwrites a key");
        let back = Signer::load(&path).expect("loads");
        assert_eq!(back.key_id(), s.key_id());
        assert_eq!(PublicKey::load(&pub_path).expect("pub").id(), s.key_id());
        assert!(
            PublicKey::load(&path).is_err(),
            "a private key is not a public key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = Signer::load(&path).expect_err("loose");
            assert!(e.to_string().contains("mode 0644"), "{e}");
        }
        let trusted = load_trusted_keys(dir.path()).expect("folder");
        assert_eq!(trusted.keys.len(), 1);
        assert!(load_trusted_keys(&dir.path().join("none")).is_err());
    }
}
