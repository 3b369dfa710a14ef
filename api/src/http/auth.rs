//! Who is calling: the bearer token verified and its actor loaded, and the client's IP.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::kit::error::{AppError, AppResult};
use crate::kit::gql::ClientApp;
use crate::kit::state::AppState;
use crate::rbac::graphql::Caller;

/// Verifies a bearer token and loads its actor, with the app the token was issued to (for
/// tokens from before apps were told apart: the account's own). A bad token is remembered
/// in the `Caller`, not fatal; only an unreachable database or Redis is an error here.
pub async fn authenticate(state: &AppState, token: Option<&str>) -> AppResult<(Caller, Option<ClientApp>)> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok((Caller(Ok(None)), None));
    };
    let claims = match crate::auth::service::verify_access_token(state, token) {
        Ok(c) => c,
        Err(AppError::Unauthenticated { reason, msg }) => return Ok((Caller(Err((reason, msg))), None)),
        Err(e) => return Err(e),
    };
    match crate::rbac::service::load_actor(state, claims.sub, claims.cid, claims.iat).await {
        Ok(a) => {
            let own = if a.is_staff() { ClientApp::Staff } else { ClientApp::Owner };
            Ok((Caller(Ok(Some(a))), Some(claims.app.unwrap_or(own))))
        }
        Err(AppError::Unauthenticated { reason, msg }) => Ok((Caller(Err((reason, msg))), None)),
        Err(e) => Err(e),
    }
}

/// The client's address: the peer, or with `trust_forwarded_for` the right-most address
/// of the chain (`X-Forwarded-For` entries, then the peer) that is not a trusted proxy.
/// Each trusted proxy appends what it saw; anything left of the first untrusted hop was
/// written by the client and is ignored.
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    let c = &state.config;
    if !c.trust_forwarded_for {
        return peer.ip().to_string();
    }
    let trusted: Vec<Cidr> = c.trusted_proxies.iter().filter_map(|p| Cidr::parse(p)).collect();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(peer_ip) {
        return peer_ip.to_string();
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer_ip;
    for hop in forwarded.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // garbage in the chain: stop at the last hop we could read
            None => break,
        }
    }
    client.to_string()
}

/// One hop of `X-Forwarded-For`: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`); IPv4-mapped IPv6 is read as IPv4.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).and_then(|h| h.parse().ok()))?;
    Some(ip.to_canonical())
}

/// An address block: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
            None => {
                let a = s.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { net: addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.bits == 0 { 0 } else { u32::MAX << (32 - u32::from(self.bits)) };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.bits == 0 { 0 } else { u128::MAX << (128 - u32::from(self.bits)) };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// The bearer token of an `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1/128").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("192.168.1.9").unwrap().contains("192.168.1.9".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
        assert!(c.contains("::ffff:10.1.0.7".parse().unwrap()), "IPv4-mapped IPv6 is IPv4");
    }

    #[test]
    fn hops_with_ports_and_brackets() {
        assert_eq!(parse_hop("1.2.3.4:5678"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_hop("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_hop("::ffff:8.8.8.8"), Some("8.8.8.8".parse().unwrap()));
        assert_eq!(parse_hop("unknown"), None);
    }
}
