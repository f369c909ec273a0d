//! RTSPS (RTSP over TLS). retina speaks plain RTSP, so ingest opens the TLS
//! session to the camera itself (rustls, certificates verified against the
//! system roots plus `ingest.tls_ca_file`) and hands retina a loopback port
//! that relays the one RTSP connection through it. RTP is interleaved on
//! that connection (TCP transport), so the whole session is encrypted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use super::source::SourceError;

/// The default RTSPS port (RFC 7826).
pub const DEFAULT_PORT: u16 = 322;

/// TLS client settings for cameras. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

impl Tls {
    /// Trust the system's roots and, when given, the PEM certificates in
    /// `ca_file` (a private CA, or the CA that signed a camera's certificate).
    pub fn new(ca_file: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert); // an unparsable system root is skipped
        }
        if let Some(path) = ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ingest.tls_ca_file {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("ingest.tls_ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ingest.tls_ca_file {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "ingest.tls_ca_file {} holds no certificate",
                    path.display()
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The system roots only.
    pub fn system() -> Self {
        Self::new(None).expect("the system roots alone always make a TLS config")
    }

    /// Open TLS to the `rtsps://` camera and return the `rtsp://` loopback URL
    /// retina should use; the relay serves one connection, then ends.
    pub async fn tunnel(&self, url: &Url) -> Result<Url, SourceError> {
        let host = url
            .host_str()
            .ok_or_else(|| SourceError::Unreachable("the URL names no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| SourceError::Unreachable(format!("{host}:{port}: {e}")))?;
        let name = ServerName::try_from(host.clone())
            .map_err(|e| SourceError::Tls(format!("{host} is not a TLS server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| SourceError::Tls(e.to_string()))?;
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            SourceError::Unreachable(format!("no loopback port for the TLS relay: {e}"))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| SourceError::Unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let mut tls = tls;
            if let Ok(Ok((mut plain, _))) =
                tokio::time::timeout(Duration::from_secs(30), listener.accept()).await
            {
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            }
        });
        let mut plain = url.clone();
        plain
            .set_scheme("rtsp")
            .map_err(|()| SourceError::Unreachable("cannot rewrite the URL".into()))?;
        plain
            .set_host(Some("127.0.0.1"))
            .map_err(|e| SourceError::Unreachable(e.to_string()))?;
        plain
            .set_port(Some(local.port()))
            .map_err(|()| SourceError::Unreachable("cannot rewrite the URL".into()))?;
        Ok(plain)
    }
}
