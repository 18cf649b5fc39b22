//! Provenance: what produced a result, recorded in it so a signature vouches for it too.
//!
//! Together with the result's top-level `command` (argv), `started_at`/`finished_at` (the time
//! window), `tool`, `host`, `components` and `devices`, the `provenance` section answers: which
//! binary (SHA-256 of the executable file), built from which crate version and commit, running
//! which kernel sources (SHA-256 of each `kernels/*.cu` as embedded), on which libraries and
//! devices (UUID, PCI bus id, serial and VBIOS where readable), on which cloud instance.
//!
//! The cloud instance identity comes from the provider's metadata service, and only when the
//! machine says it is a cloud instance through DMI (`/sys/class/dmi/id`), or when
//! `GPUAUDIT_METADATA_URL` names the service explicitly. Anything else is recorded as absent with
//! the reason: gpuaudit must not send packets to 169.254.169.254 from machines that are not cloud
//! instances (such traffic is monitored, or may reach something else), and must never hang on it
//! — connect 300 ms, the whole lookup 1 s.

use crate::backend::{Backend, BackendKind, DeviceInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Names the metadata service explicitly: `http://IP[:PORT][/PREFIX]` (an IP literal or
/// `localhost`: a name lookup could hang), or `off` to skip the lookup even on a cloud instance.
pub const METADATA_URL_ENV: &str = "GPUAUDIT_METADATA_URL";
/// Which protocol the service named by [`METADATA_URL_ENV`] speaks: `aws` (default), `gcp`,
/// `azure`. Without it the provider DMI names is used.
pub const METADATA_PROVIDER_ENV: &str = "GPUAUDIT_METADATA_PROVIDER";
/// The link-local address every major cloud serves instance metadata on.
pub const CLOUD_METADATA_URL: &str = "http://169.254.169.254";
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_BODY: usize = 64 << 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub binary: Binary,
    pub crate_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// SHA-256 of each kernel source compiled for the devices (CUDA backend; empty on the CPU,
    /// whose kernels are part of the binary).
    #[serde(default)]
    pub kernel_sources: Vec<FileHash>,
    #[serde(default)]
    pub libraries: Vec<Library>,
    #[serde(default)]
    pub devices: Vec<DeviceIdentity>,
    pub instance: InstanceIdentity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why the hash is missing, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileHash {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Library {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Who the device is. `serial` and `vbios_version` come from NVML when the telemetry module
/// provides them; VBIOS is also read from `/proc/driver/nvidia` when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeviceIdentity {
    pub index: usize,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vbios_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
}

/// The cloud instance, as its provider's metadata service describes it; or why it is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InstanceIdentity {
    /// "aws", "gcp" or "azure".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// How the provider was recognised (a DMI field, or the environment variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// AWS: the instance-identity document; GCP: id, machine type, zone; Azure: the compute
    /// section's vmId, vmSize, location, zone, subscriptionId, resourceId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
    /// The provider's own signature over the identity, when offered (AWS PKCS#7, Azure attested
    /// document): lets a third party check the instance claim without trusting gpuaudit's signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent_reason: Option<String>,
}

impl InstanceIdentity {
    fn absent(reason: impl Into<String>) -> InstanceIdentity {
        InstanceIdentity {
            absent_reason: Some(reason.into()),
            ..InstanceIdentity::default()
        }
    }
}

/// Collect the provenance of a run on `backend` measuring `devices`.
pub fn collect(backend: &dyn Backend, devices: &[DeviceInfo]) -> Provenance {
    let tool = crate::result::Tool::this();
    let kernel_sources = if backend.kind() == BackendKind::Cuda {
        kernel_hashes()
    } else {
        Vec::new()
    };
    Provenance {
        binary: binary(),
        crate_version: tool.version,
        git_commit: tool.git_commit,
        kernel_sources,
        libraries: backend
            .components()
            .into_iter()
            .filter(|c| c.problem.is_none())
            .map(|c| Library {
                name: c.name,
                version: c.version,
                path: c.path,
            })
            .collect(),
        devices: with_board_identity(backend, devices.iter().map(device_identity).collect()),
        instance: instance_identity(),
    }
}

/// On GPUs, add the serial number and VBIOS that NVML reads (joined by UUID), where the driver's
/// /proc files gave none. Without NVML the identities stay as they are.
fn with_board_identity(backend: &dyn Backend, mut ids: Vec<DeviceIdentity>) -> Vec<DeviceIdentity> {
    if backend.kind() != BackendKind::Cuda {
        return ids;
    }
    let Ok(nvml) = crate::telemetry::nvml::open() else {
        return ids;
    };
    for id in &mut ids {
        if let Some(uuid) = id.uuid.clone() {
            let (serial, vbios) = crate::telemetry::nvml::board_identity(&nvml, &uuid);
            id.serial = id.serial.take().or(serial);
            id.vbios_version = id.vbios_version.take().or(vbios);
        }
    }
    ids
}

/// SHA-256 of the running executable.
pub fn binary() -> Binary {
    let path = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return Binary {
                path: None,
                sha256: None,
                problem: Some(format!("cannot locate the running executable: {e}")),
            };
        }
    };
    let (sha256, problem) = match sha256_file(&path) {
        Ok(h) => (Some(h), None),
        Err(e) => (None, Some(format!("cannot read {}: {e}", path.display()))),
    };
    Binary {
        path: Some(path.display().to_string()),
        sha256,
        problem,
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(super::sign::hex(&hasher.finalize()))
}

/// SHA-256 of every kernel source embedded in the binary, named as in the repository.
pub fn kernel_hashes() -> Vec<FileHash> {
    crate::backend::cuda::kernels::ALL
        .iter()
        .map(|k| FileHash {
            name: format!("kernels/{}.cu", k.name),
            sha256: super::sign::hex(&Sha256::digest(k.source.as_bytes())),
        })
        .collect()
}

pub fn device_identity(d: &DeviceInfo) -> DeviceIdentity {
    DeviceIdentity {
        index: d.index,
        name: d.name.clone(),
        uuid: d.uuid.clone(),
        serial: None,
        pci_bus_id: d.pci_bus_id.clone(),
        vbios_version: d
            .pci_bus_id
            .as_deref()
            .and_then(|bus| vbios_from_proc(Path::new("/proc/driver/nvidia/gpus"), bus)),
        driver_version: d.driver_version.clone(),
    }
}

/// The "Video BIOS:" line of the NVIDIA driver's per-GPU information file. The folder is named
/// by the bus id with a 4-digit domain ("0000:17:00.0"); CUDA reports 8 digits.
fn vbios_from_proc(root: &Path, bus_id: &str) -> Option<String> {
    let wanted = normalize_bus_id(bus_id);
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        if normalize_bus_id(&entry.file_name().to_string_lossy()) != wanted {
            continue;
        }
        let text = std::fs::read_to_string(entry.path().join("information")).ok()?;
        return text
            .lines()
            .find_map(|l| l.strip_prefix("Video BIOS:"))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && !v.starts_with("??"));
    }
    None
}

fn normalize_bus_id(id: &str) -> String {
    let id = id.to_ascii_lowercase();
    match id.split_once(':') {
        Some((domain, rest)) => {
            let domain = domain.trim_start_matches('0');
            format!("{domain}:{rest}")
        }
        None => id,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Gcp,
    Azure,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
        }
    }

    fn parse(text: &str) -> Option<Provider> {
        match text.trim().to_ascii_lowercase().as_str() {
            "aws" | "ec2" | "amazon" => Some(Provider::Aws),
            "gcp" | "gce" | "google" => Some(Provider::Gcp),
            "azure" => Some(Provider::Azure),
            _ => None,
        }
    }
}

/// Whether to ask a metadata service, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Do not send anything; the reason goes into the result.
    Skip(String),
    Query {
        provider: Provider,
        base_url: String,
        source: String,
    },
}

/// Azure publishes this chassis asset tag for its VMs; plain Hyper-V guests say "Microsoft
/// Corporation" too, so the vendor alone would not do.
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// Which cloud DMI names, or why none.
pub fn provider_from_dmi(dmi: &Path) -> Result<(Provider, String), String> {
    let read = |field: &str| {
        std::fs::read_to_string(dmi.join(field))
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", dmi.join(field).display()))
    };
    let vendor = read("sys_vendor");
    let fields = [
        "sys_vendor",
        "product_name",
        "bios_vendor",
        "chassis_asset_tag",
    ];
    for field in fields {
        let Ok(value) = read(field) else { continue };
        let provider = match (field, value.as_str()) {
            (_, v) if v.contains("Amazon EC2") => Some(Provider::Aws),
            ("sys_vendor" | "bios_vendor", "Google") => Some(Provider::Gcp),
            ("product_name", "Google Compute Engine") => Some(Provider::Gcp),
            ("chassis_asset_tag", AZURE_ASSET_TAG) => Some(Provider::Azure),
            _ => None,
        };
        if let Some(p) = provider {
            return Ok((p, format!("DMI {field} \"{value}\"")));
        }
    }
    Err(match vendor {
        Ok(v) => {
            let product = read("product_name").unwrap_or_default();
            format!("not a recognised cloud instance: DMI vendor is \"{v}\", product \"{product}\"")
        }
        Err(e) => format!("not a recognised cloud instance: no DMI information ({e})"),
    })
}

/// Decide from the environment variables' values and the DMI folder; does no networking.
pub fn decide(env_url: Option<&str>, env_provider: Option<&str>, dmi: &Path) -> Lookup {
    let dmi_provider = provider_from_dmi(dmi);
    match env_url.map(str::trim) {
        Some("off") | Some("") => Lookup::Skip(format!("lookup disabled ({METADATA_URL_ENV}=off)")),
        Some(url) => {
            let provider = match env_provider {
                Some(name) => match Provider::parse(name) {
                    Some(p) => p,
                    None => {
                        return Lookup::Skip(format!(
                            "{METADATA_PROVIDER_ENV}=\"{name}\" is not one of aws, gcp, azure"
                        ));
                    }
                },
                None => dmi_provider.map(|(p, _)| p).unwrap_or(Provider::Aws),
            };
            Lookup::Query {
                provider,
                base_url: url.trim_end_matches('/').to_string(),
                source: format!("{METADATA_URL_ENV}={url}"),
            }
        }
        None => match dmi_provider {
            Ok((provider, source)) => Lookup::Query {
                provider,
                base_url: CLOUD_METADATA_URL.into(),
                source,
            },
            Err(reason) => Lookup::Skip(reason),
        },
    }
}

/// The instance identity per the environment and `/sys/class/dmi/id`.
pub fn instance_identity() -> InstanceIdentity {
    let url = std::env::var(METADATA_URL_ENV).ok();
    let provider = std::env::var(METADATA_PROVIDER_ENV).ok();
    let lookup = decide(
        url.as_deref(),
        provider.as_deref(),
        Path::new("/sys/class/dmi/id"),
    );
    query(&lookup)
}

/// Carry out a [`Lookup`] within [`TOTAL_TIMEOUT`].
pub fn query(lookup: &Lookup) -> InstanceIdentity {
    let (provider, base_url, source) = match lookup {
        Lookup::Skip(reason) => return InstanceIdentity::absent(reason.clone()),
        Lookup::Query {
            provider,
            base_url,
            source,
        } => (*provider, base_url, source),
    };
    let deadline = Instant::now() + TOTAL_TIMEOUT;
    let outcome = Endpoint::parse(base_url).and_then(|ep| match provider {
        Provider::Aws => query_aws(&ep, deadline),
        Provider::Gcp => query_gcp(&ep, deadline),
        Provider::Azure => query_azure(&ep, deadline),
    });
    match outcome {
        Ok((document, provider_signature)) => InstanceIdentity {
            provider: Some(provider.name().into()),
            source: Some(source.clone()),
            document: Some(document),
            provider_signature,
            absent_reason: None,
        },
        Err(e) => InstanceIdentity {
            provider: Some(provider.name().into()),
            source: Some(source.clone()),
            absent_reason: Some(format!(
                "metadata service at {base_url} did not answer: {e}"
            )),
            ..InstanceIdentity::default()
        },
    }
}

type Answer = Result<(Value, Option<String>), String>;

/// AWS IMDSv2: a session token by PUT, then the identity document and its PKCS#7 signature.
fn query_aws(ep: &Endpoint, deadline: Instant) -> Answer {
    let token = ep.request(
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        deadline,
    )?;
    let auth = [("X-aws-ec2-metadata-token", token.trim())];
    let doc = ep.request(
        "GET",
        "/latest/dynamic/instance-identity/document",
        &auth,
        deadline,
    )?;
    let document: Value =
        serde_json::from_str(&doc).map_err(|e| format!("identity document is not JSON: {e}"))?;
    // The signature is a bonus: its absence does not void the document.
    let pkcs7 = ep
        .request(
            "GET",
            "/latest/dynamic/instance-identity/pkcs7",
            &auth,
            deadline,
        )
        .ok()
        .map(|s| s.trim().to_string());
    Ok((document, pkcs7))
}

fn query_gcp(ep: &Endpoint, deadline: Instant) -> Answer {
    let h = [("Metadata-Flavor", "Google")];
    let mut doc = serde_json::Map::new();
    for (key, path) in [
        ("id", "/computeMetadata/v1/instance/id"),
        ("machine_type", "/computeMetadata/v1/instance/machine-type"),
        ("zone", "/computeMetadata/v1/instance/zone"),
    ] {
        let v = ep.request("GET", path, &h, deadline)?;
        doc.insert(key.into(), Value::String(v.trim().to_string()));
    }
    Ok((Value::Object(doc), None))
}

fn query_azure(ep: &Endpoint, deadline: Instant) -> Answer {
    let h = [("Metadata", "true")];
    let text = ep.request(
        "GET",
        "/metadata/instance/compute?api-version=2021-02-01",
        &h,
        deadline,
    )?;
    let compute: Value =
        serde_json::from_str(&text).map_err(|e| format!("compute metadata is not JSON: {e}"))?;
    // A subset: the full section carries tags and other data the owner may not want published.
    let mut doc = serde_json::Map::new();
    for key in [
        "vmId",
        "vmSize",
        "location",
        "zone",
        "subscriptionId",
        "resourceId",
    ] {
        if let Some(v) = compute.get(key) {
            doc.insert(key.into(), v.clone());
        }
    }
    let attested = ep
        .request(
            "GET",
            "/metadata/attested/document?api-version=2020-09-01",
            &h,
            deadline,
        )
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.get("signature")
                .and_then(|s| s.as_str())
                .map(String::from)
        });
    Ok((Value::Object(doc), attested))
}

/// `http://IP[:PORT][/PREFIX]`: plain HTTP is all a link-local metadata service speaks.
struct Endpoint {
    addr: SocketAddr,
    host_header: String,
    prefix: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("\"{url}\" is not an http:// URL"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("bad port \"{p}\" in {url}"))?,
            ),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // An IP literal only: resolving a name could block for seconds.
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse().map_err(|_| {
                format!("host \"{host}\" in {url} is not an IP address (names are not resolved)")
            })?
        };
        Ok(Endpoint {
            addr: SocketAddr::new(ip, port),
            host_header: authority.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// One HTTP/1.1 request with `Connection: close`; the body of a 200 answer.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<String, String> {
        let left = |what: &str| {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!(
                        "timed out ({what}, {} ms in all)",
                        TOTAL_TIMEOUT.as_millis()
                    )
                })
        };
        let connect = left("connect")?.min(CONNECT_TIMEOUT);
        let mut stream = TcpStream::connect_timeout(&self.addr, connect)
            .map_err(|e| format!("connect to {}: {e}", self.addr))?;
        stream
            .set_write_timeout(Some(left("send")?))
            .map_err(|e| e.to_string())?;
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: gpuaudit/{}\r\n",
            self.prefix,
            self.host_header,
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "PUT" {
            req.push_str("Content-Length: 0\r\n");
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            stream
                .set_read_timeout(Some(left("answer")?))
                .map_err(|e| e.to_string())?;
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > MAX_BODY {
                        return Err(format!("answer larger than {MAX_BODY} bytes"));
                    }
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        parse_response(&raw).map_err(|e| format!("{method} {path}: {e}"))
    }
}

fn parse_response(raw: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("incomplete HTTP answer")?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or("no HTTP status line")?;
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("bad chunked body")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        rest = after.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A mock IMDSv2 on 127.0.0.1 that answers `requests` requests; returns its base URL.
    pub(crate) fn mock_aws(requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("PUT /latest/api/token") {
                    "TOKEN123".to_string()
                } else if !req.contains("X-aws-ec2-metadata-token: TOKEN123") {
                    let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
                    continue;
                } else if req.starts_with("GET /latest/dynamic/instance-identity/document") {
                    r#"{"instanceId":"i-0123456789abcdef0","instanceType":"p5.48xlarge","region":"us-east-1"}"#.into()
                } else if req.starts_with("GET /latest/dynamic/instance-identity/pkcs7") {
                    "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwGggCSABIIB"
                        .into()
                } else {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                    continue;
                };
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        format!("http://{addr}")
    }

    fn dmi(fields: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (k, v) in fields {
            std::fs::write(dir.path().join(k), format!("{v}\n")).expect("write");
        }
        dir
    }

    #[test]
    fn dmi_names_the_cloud_and_nothing_else_queries() {
        let aws = dmi(&[
            ("sys_vendor", "Amazon EC2"),
            ("product_name", "p5.48xlarge"),
        ]);
        assert!(matches!(
            decide(None, None, aws.path()),
            Lookup::Query { provider: Provider::Aws, ref base_url, .. } if base_url == CLOUD_METADATA_URL
        ));
        let gcp = dmi(&[
            ("sys_vendor", "Google"),
            ("product_name", "Google Compute Engine"),
        ]);
        assert!(matches!(
            decide(None, None, gcp.path()),
            Lookup::Query {
                provider: Provider::Gcp,
                ..
            }
        ));
        let azure = dmi(&[
            ("sys_vendor", "Microsoft Corporation"),
            ("chassis_asset_tag", AZURE_ASSET_TAG),
        ]);
        assert!(matches!(
            decide(None, None, azure.path()),
            Lookup::Query {
                provider: Provider::Azure,
                ..
            }
        ));
        let hyperv = dmi(&[
            ("sys_vendor", "Microsoft Corporation"),
            ("product_name", "Virtual Machine"),
        ]);
        match decide(None, None, hyperv.path()) {
            Lookup::Skip(r) => {
                assert!(r.contains("DMI vendor is \"Microsoft Corporation\""), "{r}")
            }
            other => panic!("{other:?}"),
        }
        let none = tempfile::tempdir().expect("tempdir");
        match decide(None, None, &none.path().join("absent")) {
            Lookup::Skip(r) => assert!(
                r.starts_with("not a recognised cloud instance: no DMI"),
                "{r}"
            ),
            other => panic!("{other:?}"),
        }
        // "off" wins even on a cloud instance.
        assert!(matches!(
            decide(Some("off"), None, aws.path()),
            Lookup::Skip(_)
        ));
    }

    #[test]
    fn this_machine_is_not_queried() {
        // The real environment (tests must never reach a real metadata service): unless DMI
        // names a cloud, the lookup is skipped with the reason.
        if std::env::var_os(METADATA_URL_ENV).is_some() {
            return;
        }
        if let Lookup::Skip(reason) = decide(None, None, Path::new("/sys/class/dmi/id")) {
            let id = query(&Lookup::Skip(reason.clone()));
            assert_eq!(id.absent_reason.as_deref(), Some(reason.as_str()));
            assert!(id.document.is_none());
        }
    }

    #[test]
    fn mock_imdsv2_on_loopback_answers() {
        let url = mock_aws(3);
        let lookup = decide(Some(&url), Some("aws"), Path::new("/nonexistent"));
        let id = query(&lookup);
        assert_eq!(id.absent_reason, None, "{id:?}");
        assert_eq!(id.provider.as_deref(), Some("aws"));
        let doc = id.document.expect("document");
        assert_eq!(doc["instanceId"], "i-0123456789abcdef0");
        assert!(id.provider_signature.expect("pkcs7").starts_with("MIAG"));
    }

    #[test]
    fn a_silent_or_closed_service_is_absent_quickly() {
        // A listener that accepts and never answers: the 1 s total deadline must hold.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let started = Instant::now();
        let id = query(&decide(Some(&url), None, Path::new("/nonexistent")));
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert!(id.absent_reason.expect("absent").contains("did not answer"));
        drop(listener);
        // Nothing listening: connection refused, at once.
        let id = query(&decide(Some(&url), None, Path::new("/nonexistent")));
        assert!(id.absent_reason.is_some());
        // Names are never resolved.
        let id = query(&decide(
            Some("http://metadata.example"),
            None,
            Path::new("/x"),
        ));
        assert!(
            id.absent_reason
                .expect("absent")
                .contains("not an IP address")
        );
    }

    #[test]
    fn chunked_answers_are_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab12\r\n3\r\ncde\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw), Ok("ab12cde".into()));
        assert!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
    }

    #[test]
    fn vbios_is_read_by_bus_id() {
        let root = tempfile::tempdir().expect("tempdir");
        let gpu = root.path().join("0000:17:00.0");
        std::fs::create_dir(&gpu).expect("mkdir");
        std::fs::write(
            gpu.join("information"),
            "Model: \t\t NVIDIA H100\nVideo BIOS: \t 96.00.74.00.0D\n",
        )
        .expect("write");
        assert_eq!(
            vbios_from_proc(root.path(), "00000000:17:00.0").as_deref(),
            Some("96.00.74.00.0D")
        );
        assert_eq!(vbios_from_proc(root.path(), "00000000:18:00.0"), None);
    }

    #[test]
    fn kernel_hashes_cover_every_embedded_source() {
        let hashes = kernel_hashes();
        assert_eq!(hashes.len(), crate::backend::cuda::kernels::ALL.len());
        assert!(
            hashes
                .iter()
                .all(|h| h.sha256.len() == 64 && h.name.starts_with("kernels/"))
        );
        let b = binary();
        assert!(b.sha256.is_some(), "{b:?}");
    }
}
