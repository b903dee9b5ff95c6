//! Parsing at the edge: callback URLs ([`CallbackUrl`], the one validator
//! every family uses), their destinations, and the addresses a callback
//! must never reach ([`address_forbidden`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest callback URL, in bytes.
pub const URL_MAX: usize = 2048;

/// `host:port` of a URL: the unit of per-destination limits and filters.
pub fn destination_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .map(|u| {
            format!(
                "{}:{}",
                u.host_str().unwrap_or_default(),
                u.port_or_known_default().unwrap_or(0)
            )
        })
        .unwrap_or_default()
}

/// True for addresses a webhook must not reach unless explicitly allowed:
/// link-local (which includes cloud metadata at 169.254.169.254), the AWS
/// IPv6 metadata address, unspecified, multicast and broadcast — also when
/// an IPv4 address is embedded in an IPv6 one ([`embedded_ipv4`]).
pub fn address_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            (seg[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || embedded_ipv4(v6).into_iter().any(v4_forbidden)
                || local_use_nat64_positions(v6)
                    .into_iter()
                    .any(|v4| v4_forbidden(v4) && !v4.is_unspecified())
        }
    }
}

fn v4_forbidden(v4: Ipv4Addr) -> bool {
    v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()
}

/// The IPv4 address an IPv6 address carries, by the forms that route to
/// it: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, SIIT
/// `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and `64:ff9b:1::a.b.c.d`
/// (RFC 6052, RFC 8215; the /96 position) and 6to4 `2002:aabb:ccdd::/48`
/// (bits 16..48). [`address_forbidden`] also judges the other RFC 6052
/// positions a prefix inside the local-use `64:ff9b:1::/48` may use.
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let b = v6.octets();
    match v6.segments() {
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _]
        | [0x64, 0xff9b, 1, ..] => Some(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        [0x2002, ..] => Some(Ipv4Addr::new(b[2], b[3], b[4], b[5])),
        _ => None,
    }
}

/// Inside `64:ff9b:1::/48` an operator may use a /48, /56 or /64 NAT64
/// prefix, which puts the IPv4 address elsewhere (RFC 6052 §2.2, skipping
/// the `u` octet): each of those positions.
fn local_use_nat64_positions(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let b = v6.octets();
    if !matches!(v6.segments(), [0x64, 0xff9b, 1, ..]) {
        return Vec::new();
    }
    [[6, 7, 9, 10], [7, 9, 10, 11], [9, 10, 11, 12]]
        .into_iter()
        .map(|i: [usize; 4]| Ipv4Addr::new(b[i[0]], b[i[1]], b[i[2]], b[i[3]]))
        .collect()
}

/// What is wrong with a callback URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("url is longer than {URL_MAX} bytes")]
    TooLong,
    #[error("url is not a valid absolute URL: {0}")]
    Invalid(String),
    #[error("url scheme must be http or https")]
    Scheme,
    #[error("url has no host")]
    NoHost,
    #[error(
        "address {0} is refused: link-local and metadata addresses are not allowed (see --allow-link-local)"
    )]
    Forbidden(IpAddr),
}

/// A callback URL every family accepts: at most [`URL_MAX`] bytes,
/// absolute, `http` or `https`, with a host, and — unless link-local
/// addresses are allowed (`--allow-link-local`) — not a literal address
/// [`address_forbidden`] refuses. Names are judged again when resolved
/// (the worker's resolver refuses forbidden answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    url: url::Url,
    destination: String,
}

impl CallbackUrl {
    pub fn parse(raw: &str, allow_link_local: bool) -> Result<Self, UrlProblem> {
        if raw.len() > URL_MAX {
            return Err(UrlProblem::TooLong);
        }
        let url = url::Url::parse(raw).map_err(|e| UrlProblem::Invalid(e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(UrlProblem::Scheme);
        }
        let ip = match url.host() {
            None => return Err(UrlProblem::NoHost),
            Some(url::Host::Domain("")) => return Err(UrlProblem::NoHost),
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(ip) = ip
            && !allow_link_local
            && address_forbidden(ip)
        {
            return Err(UrlProblem::Forbidden(ip));
        }
        let destination = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        Ok(Self { url, destination })
    }

    /// `host:port`: the unit of per-destination limits and filters.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn forbidden(s: &str) -> bool {
        address_forbidden(s.parse().unwrap())
    }

    #[test]
    fn plain_addresses() {
        for f in [
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "::",
            "ff02::1",
            "fd00:ec2::254",
        ] {
            assert!(forbidden(f), "{f}");
        }
        for ok in ["8.8.8.8", "127.0.0.1", "10.0.0.1", "::1", "2001:db8::1"] {
            assert!(!forbidden(ok), "{ok}");
        }
    }

    /// Each IPv6 form that embeds an IPv4 address, with the embedded
    /// address link-local, unspecified, multicast, broadcast or public.
    fn embedding_forms(v4: &str) -> Vec<String> {
        let a: Ipv4Addr = v4.parse().unwrap();
        let [p, q, r, s] = a.octets();
        let hi = u16::from_be_bytes([p, q]);
        let lo = u16::from_be_bytes([r, s]);
        vec![
            format!("::ffff:{v4}"),     // IPv4-mapped
            format!("::{v4}"),          // IPv4-compatible
            format!("::ffff:0:{v4}"),   // SIIT
            format!("64:ff9b::{v4}"),   // NAT64 /96
            format!("64:ff9b:1::{v4}"), // local-use NAT64 /96
            format!(
                "64:ff9b:1:0:{:x}:{:x}:{:x}:0",
                u16::from(p),
                u16::from_be_bytes([q, r]),
                u16::from_be_bytes([s, 0])
            ), // local-use /64 (bits 64..72 are the u octet)
            format!("2002:{hi:x}:{lo:x}::"), // 6to4
            format!("2002:{hi:x}:{lo:x}:1::5"), // 6to4, some host of the site
        ]
    }

    #[test]
    fn ipv6_forms_embedding_a_forbidden_ipv4_are_forbidden() {
        for v4 in [
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.251",
            "255.255.255.255",
        ] {
            for f in embedding_forms(v4) {
                assert!(forbidden(&f), "{f} embeds {v4}");
            }
        }
        // 0.0.0.0: every form but IPv4-compatible `::` (itself unspecified) is still caught.
        for f in embedding_forms("0.0.0.0") {
            assert!(forbidden(&f), "{f} embeds 0.0.0.0");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_public_ipv4_are_allowed() {
        for f in embedding_forms("8.8.8.8") {
            assert!(!forbidden(&f), "{f} embeds 8.8.8.8");
        }
    }

    #[test]
    fn embedded_addresses_by_form() {
        let e = |s: &str| embedded_ipv4(s.parse().unwrap());
        let meta: Ipv4Addr = "169.254.169.254".parse().unwrap();
        for f in [
            "::169.254.169.254",
            "::ffff:169.254.169.254",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b::169.254.169.254",
            "64:ff9b:1::169.254.169.254",
            "2002:a9fe:a9fe::",
        ] {
            assert_eq!(e(f), Some(meta), "{f}");
        }
        assert_eq!(e("2001:db8::1"), None);
        // A /48 prefix inside the local-use range puts it at bits 48..88.
        let at48: Ipv6Addr = "64:ff9b:1:a9fe:a9:fe00::".parse().unwrap();
        assert!(local_use_nat64_positions(at48).contains(&meta));
        assert!(address_forbidden(IpAddr::V6(at48)));
    }

    #[test]
    fn callback_urls() {
        let ok = |s: &str| CallbackUrl::parse(s, false).map(|u| u.destination().to_owned());
        assert_eq!(ok("http://127.0.0.1:8080/hook").unwrap(), "127.0.0.1:8080");
        assert_eq!(ok("https://Example.com/x?y=1").unwrap(), "example.com:443");
        assert_eq!(ok("http://u:p@[::1]:9/x").unwrap(), "[::1]:9");
        assert_eq!(ok("ftp://x/y"), Err(UrlProblem::Scheme));
        assert!(matches!(ok("not a url"), Err(UrlProblem::Invalid(_))));
        assert!(ok("http://").is_err());
        assert_eq!(
            ok(&format!("http://h/{}", "u".repeat(URL_MAX))),
            Err(UrlProblem::TooLong)
        );
        for bad in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]/",
            "http://[::169.254.169.254]/",
            "http://[64:ff9b::169.254.169.254]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[::ffff:169.254.169.254]/",
        ] {
            assert!(
                matches!(ok(bad), Err(UrlProblem::Forbidden(_))),
                "{bad}: {:?}",
                ok(bad)
            );
            assert!(CallbackUrl::parse(bad, true).is_ok(), "{bad} when allowed");
        }
    }
}
