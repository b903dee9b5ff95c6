//! Parsing at the edge: destinations of callback URLs and the addresses a
//! callback must never reach.

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
/// IPv6 metadata address, unspecified and multicast.
pub fn address_forbidden(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()
        }
        std::net::IpAddr::V6(v6) => {
            let seg = v6.segments();
            (seg[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| address_forbidden(std::net::IpAddr::V4(v4)))
        }
    }
}
