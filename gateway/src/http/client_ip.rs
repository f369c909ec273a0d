//! Which address a request comes from, for per-client limits.
//!
//! The TCP peer is the client unless it is one of `server.trusted_proxies`
//! (a load balancer): then `X-Forwarded-For` is read from the right, skipping
//! trusted proxies, and the first address that is not one is the client. An
//! entry a client wrote itself sits to the left of what the proxies appended,
//! so it is never believed while a trusted hop stands between.

use std::net::IpAddr;

/// One `address/prefix` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has a prefix length outside 0..={max}"))?,
        };
        Ok(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, from a dual-stack socket) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `server.trusted_proxies`, parsed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    blocks: Vec<Block>,
}

impl TrustedProxies {
    /// Parse the configured list; the error names the bad entry.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let blocks = entries
            .iter()
            .map(|e| Block::parse(e).map_err(|m| format!("server.trusted_proxies: {m}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { blocks })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For`
    /// header values (in the order received).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                // Garbage where an address should be: stop at the last good hop.
                break;
            };
            client = canonical(ip);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), ["9.9.9.9"].into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.7"]);
        // A client-forged entry on the left is never believed.
        let xff = ["6.6.6.6, 198.51.100.20, 10.1.2.3"];
        assert_eq!(
            p.client_ip(ip("192.168.1.7"), xff.into_iter()),
            ip("198.51.100.20")
        );
        // Several header lines read as one list.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["198.51.100.20", "10.9.9.9"].into_iter()),
            ip("198.51.100.20")
        );
        // No header: the proxy itself.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["nonsense"].into_iter()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn blocks_match_by_prefix_in_both_families() {
        let p = proxies(&["10.0.0.0/8", "fd00::/8", "0.0.0.0/0"]);
        assert!(p.contains(ip("10.200.0.1")));
        assert!(p.contains(ip("fd12::1")));
        assert!(
            p.contains(ip("::ffff:8.8.8.8")),
            "mapped IPv4 matches IPv4 blocks"
        );
        let p = proxies(&["10.0.0.0/8"]);
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["ten".into()]).is_err());
    }
}
