//! A throwaway certificate authority for the TLS tests: a CA and one server
//! certificate it signed.

pub struct TestCa {
    /// The CA's certificate, to trust.
    pub ca_pem: String,
    /// The server's certificate and key.
    pub leaf: rcgen::Certificate,
    pub key: rcgen::KeyPair,
}

/// A new CA and a server certificate for `names` (host names or addresses).
pub fn issue(names: &[&str]) -> TestCa {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "panoptes test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    TestCa {
        ca_pem: ca_cert.pem(),
        leaf,
        key,
    }
}
