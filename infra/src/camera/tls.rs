//! RTSPS (RTSP over TLS). retina speaks plain RTSP, so we open the TLS
//! session to the camera itself (rustls, certificates verified against the
//! system roots plus `ingest.tls_ca_file`) on the connection the outbound
//! guard made, and the relay ([`super::relay`]) hands retina a loopback port
//! that carries the one RTSP connection through it. RTP is interleaved on
//! that connection (TCP transport), so the whole session is encrypted.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use panoptes_shared::domain::camera::SourceError;

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
        Self::trusting("ingest.tls_ca_file", ca_file)
    }

    /// [`Tls::new`] for another setting (named in errors).
    pub fn trusting(setting: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert); // an unparsable system root is skipped
        }
        if let Some(path) = ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{setting} {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{setting} {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{setting} {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{setting} {} holds no certificate", path.display()));
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

    /// The rustls client configuration (for other TLS clients of the platform).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The system roots only.
    pub fn system() -> Self {
        Self::new(None).expect("the system roots alone always make a TLS config")
    }

    /// TLS over `tcp` (a connection the outbound guard vetted) to the camera
    /// named `host` (a DNS name or an IP address, brackets allowed); its
    /// certificate must be valid for that name.
    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SourceError> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host).map_err(|e| {
            tracing::debug!(error = %e, "the camera's host is not a TLS server name");
            SourceError::Tls
        })?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                // The camera's certificate (its names) may be in the text: debug only.
                tracing::debug!(error = %e, "TLS handshake with the camera failed");
                SourceError::Tls
            })
    }
}
