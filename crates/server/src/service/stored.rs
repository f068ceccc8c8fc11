//! `Stored`: what the write use cases hand back, one resource of any kind clients may
//! write, typed. The use cases check and build it; `service::create` and `update` save it
//! once and derive the agent notifications from it; only the HTTP edge turns it into JSON.

use serde::Serialize;
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::flavor::{Flavor, ServiceProfile};
use vpnaas_model::network::{Network, Router, Subnet};
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_store::{Record, Transaction};

use crate::error::ApiResult;

/// One resource of a writable kind. Serialised as the resource itself (untagged), which
/// is its API representation.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Stored {
    IkePolicy(IkePolicy),
    IpsecPolicy(IpsecPolicy),
    EndpointGroup(EndpointGroup),
    VpnService(VpnService),
    SiteConnection(SiteConnection),
    Network(Network),
    Subnet(Subnet),
    Router(Router),
    Flavor(Flavor),
    ServiceProfile(ServiceProfile),
}

impl Stored {
    /// Inserts or replaces it in the store.
    pub async fn save(&self, tx: &mut dyn Transaction) -> ApiResult<()> {
        tx.put(self.record()).await?;
        Ok(())
    }

    fn record(&self) -> Record {
        match self {
            Stored::IkePolicy(r) => Record::encode(r),
            Stored::IpsecPolicy(r) => Record::encode(r),
            Stored::EndpointGroup(r) => Record::encode(r),
            Stored::VpnService(r) => Record::encode(r),
            Stored::SiteConnection(r) => Record::encode(r),
            Stored::Network(r) => Record::encode(r),
            Stored::Subnet(r) => Record::encode(r),
            Stored::Router(r) => Record::encode(r),
            Stored::Flavor(r) => Record::encode(r),
            Stored::ServiceProfile(r) => Record::encode(r),
        }
    }
}

macro_rules! from_resource {
    ($($kind:ident),*) => {
        $(impl From<$kind> for Stored {
            fn from(resource: $kind) -> Stored {
                Stored::$kind(resource)
            }
        })*
    };
}

from_resource!(
    IkePolicy,
    IpsecPolicy,
    EndpointGroup,
    VpnService,
    SiteConnection,
    Network,
    Subnet,
    Router,
    Flavor,
    ServiceProfile
);
