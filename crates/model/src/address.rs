//! Addresses and CIDRs as the domain holds them: parsed once, when a request or a stored
//! record is read, and carried with the spelling the user gave, so that what goes back
//! out (API responses, stored records) is exactly what came in, while every use reads
//! the parsed `IpAddr` or `IpNet` instead of parsing text again.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::grammar;

/// A CIDR (`10.0.0.0/24`; host bits allowed, as Neutron allows them): the user's spelling
/// and the network it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cidr {
    text: String,
    net: IpNet,
}

impl Cidr {
    /// The network, as given (host bits kept).
    pub fn net(&self) -> IpNet {
        self.net
    }

    /// The spelling the user gave.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// 4 or 6.
    pub fn version(&self) -> u8 {
        version_of(self.net.addr())
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses a CIDR as the API accepts it (`grammar::parse_cidr`: a prefix is required).
    fn from_str(text: &str) -> Result<Self, String> {
        let net = grammar::parse_cidr(text)?;
        Ok(Cidr {
            text: text.to_string(),
            net,
        })
    }
}

impl From<IpNet> for Cidr {
    /// A network the server computed, in its canonical spelling.
    fn from(net: IpNet) -> Self {
        Cidr {
            text: net.to_string(),
            net,
        }
    }
}

/// An IP address: the user's spelling and the address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpAddress {
    text: String,
    ip: IpAddr,
}

impl IpAddress {
    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The spelling the user gave.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// 4 or 6.
    pub fn version(&self) -> u8 {
        version_of(self.ip)
    }
}

impl FromStr for IpAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let ip = text
            .parse()
            .map_err(|_| format!("'{text}' is not a valid IP address"))?;
        Ok(IpAddress {
            text: text.to_string(),
            ip,
        })
    }
}

impl From<IpAddr> for IpAddress {
    /// An address the server chose, in its canonical spelling.
    fn from(ip: IpAddr) -> Self {
        IpAddress {
            text: ip.to_string(),
            ip,
        }
    }
}

/// A connection's `peer_address`: an IP literal, or a host name (`grammar::PeerAddress`),
/// with the spelling it was given in. The server stores the address a name resolved to,
/// so a stored connection's peer is an IP literal; the type still says that it might not
/// be, and the desired state says why a connection whose peer is not waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    text: String,
    parsed: grammar::PeerAddress,
}

impl PeerAddress {
    /// The address, when the peer is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.parsed {
            grammar::PeerAddress::Ip(ip) => Some(ip),
            grammar::PeerAddress::Fqdn(_) => None,
        }
    }

    /// What the peer is: an address, or a name to resolve.
    pub fn parsed(&self) -> &grammar::PeerAddress {
        &self.parsed
    }

    /// The spelling given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for PeerAddress {
    type Err = String;

    /// Parses a peer address as the API accepts it (`grammar::parse_peer_address`).
    fn from_str(text: &str) -> Result<Self, String> {
        let parsed = grammar::parse_peer_address(text)?;
        Ok(PeerAddress {
            text: text.to_string(),
            parsed,
        })
    }
}

impl PeerAddress {
    /// Reads a stored peer address: an IP literal is taken as it is, so that a rule the
    /// API adds later for new peers (`grammar::unfit_peer`) never makes a stored
    /// connection unreadable; anything else must still be a host name.
    fn read(text: &str) -> Result<Self, String> {
        let parsed = match text.parse::<IpAddr>() {
            Ok(ip) => grammar::PeerAddress::Ip(ip),
            Err(_) => {
                grammar::check_fqdn(text)?;
                grammar::PeerAddress::Fqdn(text.to_string())
            }
        };
        Ok(PeerAddress {
            text: text.to_string(),
            parsed,
        })
    }
}

impl From<IpAddr> for PeerAddress {
    /// The address a host name resolved to.
    fn from(ip: IpAddr) -> Self {
        PeerAddress {
            text: ip.to_string(),
            parsed: grammar::PeerAddress::Ip(ip),
        }
    }
}

/// One endpoint of an endpoint group, as given: a subnet, network or router id, a VLAN id
/// or a CIDR, depending on the group's type. What is spelt as a CIDR is parsed here once;
/// whether the group's type wants a CIDR is the use case's check (with Neutron's message),
/// so reading an endpoint never fails.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    text: String,
    cidr: Option<IpNet>,
}

impl Endpoint {
    /// The endpoint as a CIDR, if it is spelt as one.
    pub fn cidr(&self) -> Option<IpNet> {
        self.cidr
    }

    /// The spelling given (an id, a VLAN id or a CIDR).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<&str> for Endpoint {
    fn from(text: &str) -> Self {
        Endpoint {
            text: text.to_string(),
            cidr: grammar::parse_cidr(text).ok(),
        }
    }
}

/// 4 or 6.
pub fn version_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

/// Display, serialisation and deserialisation of a type that holds its spelling in
/// `text`: shown and written as spelt, read through its parser.
macro_rules! spelt_as_given {
    ($($ty:ty => $parse:expr),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.text)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                let parse: fn(&str) -> Result<$ty, String> = $parse;
                parse(&text).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

spelt_as_given!(
    Cidr => str::parse,
    IpAddress => str::parse,
    PeerAddress => PeerAddress::read,
    Endpoint => |text| Ok(Endpoint::from(text))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_back_exactly_as_spelt() {
        for text in ["10.0.0.1/24", "2001:DB8::/64", "2001:db8:0:0::/64"] {
            let cidr: Cidr = serde_json::from_value(serde_json::json!(text)).expect("a CIDR");
            assert_eq!(serde_json::to_value(&cidr).expect("json"), text);
            assert_eq!(cidr.net(), text.parse::<IpNet>().expect("net"));
        }
        let ip: IpAddress = serde_json::from_str("\"2001:DB8::1\"").expect("an address");
        assert_eq!(ip.to_string(), "2001:DB8::1");
        assert_eq!(ip.ip(), "2001:db8::1".parse::<IpAddr>().expect("ip"));
        let peer: PeerAddress = serde_json::from_str("\"vpn.example.com\"").expect("a name");
        assert_eq!((peer.ip(), peer.as_str()), (None, "vpn.example.com"));
    }

    #[test]
    fn what_does_not_parse_is_refused_when_read() {
        for bad in ["\"10.0.0.0\"", "\"x/24\"", "\"10.0.0.0/33\"", "4"] {
            assert!(serde_json::from_str::<Cidr>(bad).is_err(), "{bad}");
        }
        for bad in ["\"10.0.0.0/24\"", "\"1.2.3\"", "\"\""] {
            assert!(serde_json::from_str::<IpAddress>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<PeerAddress>("\"a b\"").is_err());
        assert!(
            "127.0.0.1".parse::<PeerAddress>().is_err(),
            "refused at the edge"
        );
        let stored: PeerAddress = serde_json::from_str("\"127.0.0.1\"").expect("still read");
        assert_eq!(stored.ip(), Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn endpoints_parse_what_is_spelt_as_a_cidr_and_keep_the_rest() {
        let cidr: Endpoint = serde_json::from_str("\"10.2.0.0/24\"").expect("endpoint");
        assert_eq!(cidr.cidr(), Some("10.2.0.0/24".parse().expect("net")));
        for other in ["4d2d5b7e-0d8f-4f5c-9a53-0e1c8a6e2f10", "100", "10.2.0.0"] {
            let endpoint: Endpoint =
                serde_json::from_value(serde_json::json!(other)).expect("read");
            assert_eq!((endpoint.cidr(), endpoint.as_str()), (None, other));
        }
    }
}
