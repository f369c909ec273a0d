//! The outbound guard: every connection the platform opens for a customer
//! (camera probes, ingest, health checks, webhooks) goes through
//! [`OutboundGuard`], so a tenant cannot aim the platform at its own network
//! (loopback, private ranges, cloud metadata at 169.254.169.254) and use it
//! as a proxy or a port scanner. The VLM endpoint (`vlm.base_url`) is not
//! one of them: it is the operator's own setting, not a tenant's, and may
//! rightly be a private address.
//!
//! One policy ([`classify`]), applied twice:
//! - when a target is configured ([`OutboundGuard::check`]): an IP literal
//!   (also the `inet_aton` forms `2130706433`, `0x7f.1`, `127.1`) or a
//!   `localhost` name is judged as it stands; another name is resolved with a
//!   short deadline and refused if any of its addresses is not public. A name
//!   that does not resolve (yet, or not within the deadline) is accepted:
//!   nothing connects to it now, and the connect-time check still applies.
//! - when connecting ([`OutboundGuard::connect`]): the host is resolved once,
//!   EVERY address is checked (one non-public address refuses the whole
//!   target, it is a misconfiguration or an attack), and the TCP connection
//!   is made to a vetted address by the guard itself, so a name that resolves
//!   elsewhere a moment later (DNS rebinding) gains nothing.
//!
//! `outbound.allow_private` switches the address policy off, for on-premise
//! installs whose cameras are on the LAN, and for tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::ports::Resolver;

/// Why an address (or name) is not a public outbound target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Unspecified,
    Loopback,
    /// RFC 1918, IPv6 unique-local and site-local, local-use NAT64.
    Private,
    /// 169.254/16 (cloud metadata lives there), fe80::/10.
    LinkLocal,
    /// 100.64/10, carrier-grade NAT.
    SharedAddressSpace,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    /// Reserved, protocol-assignment and otherwise non-global ranges.
    Reserved,
    /// `localhost` and `*.localhost`.
    LocalName,
}

impl Blocked {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::SharedAddressSpace => "shared (CGNAT)",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
            Self::LocalName => "local host name",
        }
    }
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `None` for a public unicast address; otherwise why it is not one.
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    use Blocked::*;
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_broadcast() => Broadcast,
        _ if ip.is_unspecified() => Unspecified,
        (0, ..) => Reserved, // "this network"
        (10, ..) | (192, 168, _) => Private,
        (172, 16..=31, _) => Private,
        (100, 64..=127, _) => SharedAddressSpace,
        (127, ..) => Loopback,
        (169, 254, _) => LinkLocal,
        (192, 0, 0) | (192, 88, 99) => Reserved, // protocol assignments, 6to4 relays
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (198, 18..=19, _) => Benchmarking,
        (224..=239, ..) => Multicast,
        (240..=255, ..) => Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    use Blocked::*;
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4); // ::ffff:a.b.c.d reaches the IPv4 address
    }
    if s[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d): deprecated, never a public target.
        return Some(classify_v4(embedded(s[6], s[7])).unwrap_or(Reserved));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7])); // well-known NAT64 prefix
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some(Private); // local-use NAT64 (RFC 8215)
    }
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2])); // 6to4
    }
    Some(match s[0] {
        x if x & 0xff00 == 0xff00 => Multicast,
        x if x & 0xffc0 == 0xfe80 => LinkLocal,
        x if x & 0xffc0 == 0xfec0 => Private, // site-local (deprecated)
        x if x & 0xfe00 == 0xfc00 => Private, // unique local
        0x2001 if s[1] == 0x0db8 => Documentation,
        0x3fff if s[1] & 0xf000 == 0 => Documentation, // 3fff::/20
        0x2001 if s[1] == 0x0002 && s[2] == 0 => Benchmarking,
        0x2001 if s[1] < 0x0200 => Reserved, // IETF protocol assignments (Teredo, ORCHID...)
        x if x & 0xe000 != 0x2000 => Reserved, // outside global unicast 2000::/3
        _ => return None,
    })
}

/// What a URL's host names: an address to judge as it is, or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// Parse a URL's host (`[::1]` with brackets, `10.0.0.5`, the
    /// `inet_aton` forms `2130706433` / `0x7f.1` / `127.1` that the system
    /// resolver would turn into addresses, or a DNS name, lower-cased and
    /// without a trailing dot). `None` when it is none of these: a name with
    /// other characters than letters, digits, `-`, `_` and `.` (percent-
    /// escapes included) is refused rather than guessed at.
    pub fn parse(raw: &str) -> Option<Self> {
        if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().ok().map(|ip| Self::Ip(ip.into()));
        }
        if let Ok(ip) = raw.parse::<IpAddr>() {
            return Some(Self::Ip(ip));
        }
        let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        if let Some(v4) = parse_ipv4_loose(&name) {
            return Some(Self::Ip(v4.into()));
        }
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        valid.then_some(Self::Name(name))
    }
}

/// IPv4 as `inet_aton` reads it: one to four parts, each decimal, octal
/// (leading `0`) or hexadecimal (`0x`), the last filling the remaining bytes.
fn parse_ipv4_loose(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for p in &parts {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or(p.strip_prefix("0X")) {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        if p.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let v = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        values.push(v);
    }
    let (last, head) = values.split_last()?;
    if head.iter().any(|v| *v > 255) || *last >= 1u64 << (8 * (4 - head.len())) {
        return None;
    }
    let mut n = *last;
    for (i, v) in head.iter().enumerate() {
        n |= v << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(u32::try_from(n).ok()?))
}

fn is_local_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// Why an outbound target was refused or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the host is not an IP address or a valid DNS name")]
    InvalidHost,
    #[error("the target is a {0} address; only public addresses are allowed")]
    Blocked(Blocked),
    #[error("the host name could not be resolved")]
    Unresolvable(#[source] std::io::Error),
    #[error("the connection failed")]
    Connect(#[source] std::io::Error),
}

/// Vets outbound targets and opens TCP connections to vetted addresses only.
/// Cheap to clone.
#[derive(Clone)]
pub struct OutboundGuard {
    resolver: Arc<dyn Resolver>,
    allow_private: bool,
    check_deadline: Duration,
}

impl std::fmt::Debug for OutboundGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundGuard")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl OutboundGuard {
    /// How long [`check`](Self::check) waits for a name to resolve.
    pub const CHECK_DEADLINE: Duration = Duration::from_secs(2);

    pub fn new(resolver: Arc<dyn Resolver>, allow_private: bool) -> Self {
        Self {
            resolver,
            allow_private,
            check_deadline: Self::CHECK_DEADLINE,
        }
    }

    /// Whether non-public targets are allowed (`outbound.allow_private`).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    fn judge(&self, ip: IpAddr) -> Result<(), OutboundError> {
        match classify(ip) {
            Some(why) if !self.allow_private => Err(OutboundError::Blocked(why)),
            _ => Ok(()),
        }
    }

    fn parse(&self, host: &str) -> Result<Host, OutboundError> {
        let host = Host::parse(host).ok_or(OutboundError::InvalidHost)?;
        match &host {
            Host::Name(n) if !self.allow_private && is_local_name(n) => {
                Err(OutboundError::Blocked(Blocked::LocalName))
            }
            _ => Ok(host),
        }
    }

    /// The check when a target is configured (see the module docs): refuses
    /// what is known to be non-public now; accepts a name that does not
    /// resolve within [`CHECK_DEADLINE`](Self::CHECK_DEADLINE).
    pub async fn check(&self, host: &str, port: u16) -> Result<(), OutboundError> {
        match self.parse(host)? {
            Host::Ip(ip) => self.judge(ip),
            Host::Name(_) if self.allow_private => Ok(()),
            Host::Name(name) => {
                let lookup = self.resolver.resolve(&name, port);
                match tokio::time::timeout(self.check_deadline, lookup).await {
                    Ok(Ok(addrs)) => addrs.iter().try_for_each(|a| self.judge(a.ip())),
                    Ok(Err(_)) | Err(_) => Ok(()),
                }
            }
        }
    }

    /// [`check`](Self::check) for a URL; `default_port` when it names none.
    pub async fn check_url(&self, url: &url::Url, default_port: u16) -> Result<(), OutboundError> {
        let host = url.host_str().ok_or(OutboundError::InvalidHost)?;
        self.check(host, url.port().unwrap_or(default_port)).await
    }

    /// Resolve `host` once and vet every address: all of them, or an error.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let addrs = match self.parse(host)? {
            Host::Ip(ip) => vec![SocketAddr::new(ip, port)],
            Host::Name(name) => self
                .resolver
                .resolve(&name, port)
                .await
                .map_err(OutboundError::Unresolvable)?,
        };
        if addrs.is_empty() {
            return Err(OutboundError::Unresolvable(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no addresses",
            )));
        }
        for a in &addrs {
            self.judge(a.ip())?;
        }
        Ok(addrs)
    }

    /// A TCP connection to `host:port`, made to one of the addresses
    /// [`resolve`](Self::resolve) vetted (tried in order). Callers bound the
    /// time it may take.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, OutboundError> {
        let mut last = None;
        for addr in self.resolve(host, port).await? {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(OutboundError::Connect(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses")
        })))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn v4(s: &str) -> Option<Blocked> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn public_ipv4_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
        ] {
            assert_eq!(v4(ip), None, "{ip}");
        }
        for ip in [
            "172.15.255.255",
            "172.32.0.0",
            "169.253.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(v4(ip), None, "{ip}");
        }
    }

    #[test]
    fn non_public_ipv4_addresses_are_classified() {
        use Blocked::*;
        for (ip, why) in [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.0.0.5", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.100", Private),
            ("169.254.169.254", LinkLocal),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.255", Broadcast),
        ] {
            assert_eq!(v4(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn ipv6_addresses_and_their_ipv4_forms_are_classified() {
        use Blocked::*;
        for (ip, why) in [
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::8.8.8.8", Some(Reserved)),
            ("::ffff:0:8.8.8.8", Some(Reserved)),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::192.168.0.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::1", Some(Private)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:a9fe:a9fe::1", Some(LinkLocal)),
            ("2002:808:808::1", None),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001:2::1", Some(Benchmarking)),
            ("2001::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("4000::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450::1", None),
        ] {
            assert_eq!(classify(ip.parse().unwrap()), why, "{ip}");
        }
    }

    #[test]
    fn hosts_parse_like_the_system_resolver_reads_them() {
        let ip = |s: &str| Some(Host::Ip(s.parse().unwrap()));
        assert_eq!(Host::parse("2130706433"), ip("127.0.0.1"));
        assert_eq!(Host::parse("0x7f.1"), ip("127.0.0.1"));
        assert_eq!(Host::parse("0177.0.0.1"), ip("127.0.0.1"));
        assert_eq!(Host::parse("127.1"), ip("127.0.0.1"));
        assert_eq!(Host::parse("10.65535"), ip("10.0.255.255"));
        assert_eq!(Host::parse("127.0.0.1."), ip("127.0.0.1"));
        assert_eq!(Host::parse("[::ffff:7f00:1]"), ip("::ffff:127.0.0.1"));
        assert_eq!(
            Host::parse("Cam-1.Example.COM."),
            Some(Host::Name("cam-1.example.com".into()))
        );
        // Not numbers: names (resolved, then judged by their addresses).
        assert_eq!(Host::parse("08.1"), Some(Host::Name("08.1".into())));
        assert_eq!(
            Host::parse("256.1.1.1.1"),
            Some(Host::Name("256.1.1.1.1".into()))
        );
        for bad in [
            "",
            "127%2e0.0.1",
            "a..b",
            "[::1",
            "[fe80::1%25eth0]",
            "cam era",
        ] {
            assert_eq!(Host::parse(bad), None, "{bad}");
        }
        assert_eq!(parse_ipv4_loose("1.2.3.256"), None);
        assert_eq!(parse_ipv4_loose("4294967296"), None);
        assert_eq!(parse_ipv4_loose("1.2.3.4.5"), None);
    }

    /// Answers from a script, one answer per lookup (the last repeats), and
    /// counts lookups.
    struct Scripted {
        answers: Vec<Option<Vec<IpAddr>>>,
        calls: Mutex<usize>,
    }

    #[async_trait::async_trait]
    impl Resolver for Scripted {
        async fn resolve(&self, _host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls - 1
            };
            match &self.answers[n.min(self.answers.len() - 1)] {
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "NXDOMAIN",
                )),
            }
        }
    }

    fn guard(answers: Vec<Option<Vec<&str>>>, allow_private: bool) -> OutboundGuard {
        let answers = answers
            .into_iter()
            .map(|a| a.map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect();
        OutboundGuard::new(
            Arc::new(Scripted {
                answers,
                calls: Mutex::new(0),
            }),
            allow_private,
        )
    }

    #[tokio::test]
    async fn the_configuration_check_refuses_non_public_literals_and_names() {
        let g = guard(vec![Some(vec!["93.184.216.34", "10.0.0.1"])], false);
        for host in [
            "127.0.0.1",
            "[::1]",
            "2130706433",
            "localhost",
            "cam.localhost",
            "any.name",
        ] {
            assert!(
                matches!(g.check(host, 554).await, Err(OutboundError::Blocked(_))),
                "{host}"
            );
        }
        assert!(matches!(
            g.check("a b", 554).await,
            Err(OutboundError::InvalidHost)
        ));
        assert!(g.check("8.8.8.8", 554).await.is_ok());
        // A name that does not resolve now is accepted (connecting checks again).
        assert!(
            guard(vec![None], false)
                .check("cam.invalid", 554)
                .await
                .is_ok()
        );
        // On-premise: everything goes.
        let open = guard(vec![Some(vec!["10.0.0.1"])], true);
        assert!(open.check("localhost", 554).await.is_ok());
        assert!(open.check("cam.lan", 554).await.is_ok());
    }

    #[tokio::test]
    async fn a_name_rebound_to_loopback_is_refused_when_connecting_and_nothing_connects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        // Unknown when configured, loopback when dialled.
        let g = guard(vec![None, Some(vec!["127.0.0.1"])], false);
        assert!(g.check("cam.rebind.test", port).await.is_ok());
        let r = g.connect("cam.rebind.test", port).await;
        assert!(
            matches!(r, Err(OutboundError::Blocked(Blocked::Loopback))),
            "{r:?}"
        );
        let accepted = listener.accept();
        assert!(
            matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the listener was connected to: {accepted:?}"
        );
    }

    #[tokio::test]
    async fn one_non_public_address_refuses_the_whole_name() {
        let g = guard(vec![Some(vec!["93.184.216.34", "127.0.0.1"])], false);
        assert!(matches!(
            g.resolve("mixed.test", 554).await,
            Err(OutboundError::Blocked(Blocked::Loopback))
        ));
    }

    #[tokio::test]
    async fn allowed_targets_are_connected_to_the_vetted_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let g = guard(vec![Some(vec!["127.0.0.1"])], true);
        let stream = g.connect("camera.lan", port).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
        let (_, from) = listener.accept().await.unwrap();
        assert_eq!(from, stream.local_addr().unwrap());
    }
}
