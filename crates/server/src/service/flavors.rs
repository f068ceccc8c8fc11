//! Flavors, service profiles and providers (Neutron's `vpn-flavors`): admins define
//! profiles naming a driver and flavors grouping them; a VPN service created with a
//! `flavor_id` runs on the flavor's first enabled profile's driver, one without on the
//! server's default provider. The driver is pinned on the service (`provider`), and all
//! services of a router must agree, since a router runs one IKE daemon.

use serde_json::{Map, Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::capability;
use vpnaas_model::enums::DriverKind;
use vpnaas_model::flavor::{Flavor, ServiceProfile};
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use super::{Stored, build, changed};
use crate::auth::Caller;
use crate::error::ApiResult;

async fn load<R: vpnaas_model::Resource>(tx: &mut dyn Transaction, id: &str) -> ApiResult<R> {
    tx.load::<R>(id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(R::KIND, id).into())
}

/// The kinds whose use cases live here (`service::Owner` routes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlavorKind {
    Flavor,
    ServiceProfile,
}

impl FlavorKind {
    /// The kind, as the store and the API name it.
    pub(super) fn kind(self) -> Kind {
        match self {
            FlavorKind::Flavor => Kind::Flavor,
            FlavorKind::ServiceProfile => Kind::ServiceProfile,
        }
    }
}

/// Builds a new flavor or service profile (admins only); the caller saves it.
pub(super) fn create(
    caller: &Caller,
    kind: FlavorKind,
    fields: Map<String, Value>,
) -> ApiResult<Stored> {
    caller.require_admin(&format!("create_{}", kind.kind().singular()))?;
    Ok(match kind {
        FlavorKind::Flavor => {
            build::<Flavor>(fields, vec![("service_profiles", json!([]))])?.into()
        }
        FlavorKind::ServiceProfile => build::<ServiceProfile>(fields, vec![])?.into(),
    })
}

/// Checks a change and returns the object as changed; the caller saves it.
pub(super) async fn update(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: FlavorKind,
    id: &str,
    changes: Map<String, Value>,
) -> ApiResult<Stored> {
    caller.require_admin(&format!("update_{}", kind.kind().singular()))?;
    Ok(match kind {
        FlavorKind::Flavor => {
            let flavor: Flavor = load(tx, id).await?;
            changed(&flavor, changes)?.into()
        }
        FlavorKind::ServiceProfile => {
            let profile: ServiceProfile = load(tx, id).await?;
            changed(&profile, changes)?.into()
        }
    })
}

pub(super) async fn delete(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: FlavorKind,
    id: &str,
) -> ApiResult<Stored> {
    caller.require_admin(&format!("delete_{}", kind.kind().singular()))?;
    let removed: Stored = match kind {
        FlavorKind::Flavor => {
            let flavor: Flavor = load(tx, id).await?;
            if tx
                .first_referrer(Kind::VpnService, Kind::Flavor, id)
                .await?
                .is_some()
            {
                return Err(Fault::conflict(
                    FaultKind::FlavorInUse,
                    format!("Flavor {id} is used by at least one service."),
                )
                .into());
            }
            flavor.into()
        }
        FlavorKind::ServiceProfile => {
            let profile: ServiceProfile = load(tx, id).await?;
            if tx
                .first_referrer(Kind::Flavor, Kind::ServiceProfile, id)
                .await?
                .is_some()
            {
                return Err(Fault::conflict(
                    FaultKind::ServiceProfileInUse,
                    format!("Service Profile {id} is used by some service instance."),
                )
                .into());
            }
            profile.into()
        }
    };
    tx.delete(kind.kind(), id).await?;
    Ok(removed)
}

/// `POST /v2.0/flavors/{id}/service_profiles`.
pub async fn associate(
    tx: &mut dyn Transaction,
    caller: &Caller,
    flavor_id: &str,
    body: &Value,
) -> ApiResult<Value> {
    caller.require_admin("create_flavor_service_profile")?;
    let profile_id = body["service_profile"]["id"]
        .as_str()
        .ok_or_else(|| Fault::http_bad_request("service_profile.id is required"))?;
    let mut flavor: Flavor = load(tx, flavor_id).await?;
    load::<ServiceProfile>(tx, profile_id).await?;
    if flavor.service_profiles.iter().any(|p| p == profile_id) {
        return Err(Fault::conflict(
            FaultKind::FlavorServiceProfileBindingExists,
            format!("Service Profile {profile_id} is already associated with flavor {flavor_id}."),
        )
        .into());
    }
    flavor.service_profiles.push(profile_id.to_string());
    tx.save(&flavor).await?;
    Ok(json!({"service_profile": {"id": profile_id}}))
}

/// `DELETE /v2.0/flavors/{id}/service_profiles/{profile_id}`.
pub async fn disassociate(
    tx: &mut dyn Transaction,
    caller: &Caller,
    flavor_id: &str,
    profile_id: &str,
) -> ApiResult<()> {
    caller.require_admin("delete_flavor_service_profile")?;
    let mut flavor: Flavor = load(tx, flavor_id).await?;
    let before = flavor.service_profiles.len();
    flavor.service_profiles.retain(|p| p != profile_id);
    if flavor.service_profiles.len() == before {
        return Err(Fault::not_found(
            FaultKind::FlavorServiceProfileBindingNotFound,
            format!("Service Profile {profile_id} is not associated with flavor {flavor_id}."),
        )
        .into());
    }
    tx.save(&flavor).await?;
    Ok(())
}

/// The driver a new service gets: its flavor's, or the default. Neutron's order of errors:
/// missing flavor, wrong service type, disabled flavor, no usable profile.
pub async fn choose_driver(
    tx: &mut dyn Transaction,
    flavor_id: Option<&str>,
    default: DriverKind,
) -> ApiResult<DriverKind> {
    let Some(flavor_id) = flavor_id else {
        return Ok(default);
    };
    let flavor: Flavor = load(tx, flavor_id).await?;
    if flavor.service_type != vpnaas_model::flavor::VPN_SERVICE_TYPE {
        return Err(Fault::bad_request(
            FaultKind::InvalidServiceType,
            format!("Service type {} is not supported", flavor.service_type),
        )
        .into());
    }
    if !flavor.enabled {
        return Err(Fault::new(
            vpnaas_model::error::FaultClass::Unavailable,
            FaultKind::FlavorDisabled,
            "Flavor is not enabled.",
        )
        .into());
    }
    for profile_id in &flavor.service_profiles {
        if let Some(profile) = tx.load::<ServiceProfile>(profile_id).await?
            && profile.enabled
        {
            return Ok(profile.driver);
        }
    }
    Err(Fault::not_found(
        FaultKind::NoProviderFoundForFlavor,
        format!("No provider found for flavor {flavor_id}"),
    )
    .into())
}

/// Refuses a driver that differs from the one the router's other services run on.
pub async fn check_router_driver(
    tx: &mut dyn Transaction,
    router_id: &str,
    driver: DriverKind,
    except_service: Option<&str>,
) -> ApiResult<()> {
    for other in tx
        .load_referrers::<VpnService>(Kind::Router, router_id)
        .await?
    {
        if Some(other.id.as_str()) == except_service {
            continue;
        }
        let theirs = other.provider.unwrap_or(DriverKind::Strongswan);
        if theirs != driver {
            return Err(Fault::conflict(
                FaultKind::VPNDriverConflict,
                format!(
                    "Router {router_id} runs its VPN on the {theirs} driver (service {}); a service on the {driver} driver cannot share it: one router runs one IKE daemon",
                    other.id
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Refuses a connection whose policies the driver cannot negotiate (400 naming the field).
pub fn check_policies(driver: DriverKind, ike: &IkePolicy, ipsec: &IpsecPolicy) -> ApiResult<()> {
    capability::check(driver, ike, ipsec)
        .map_err(|u| Fault::bad_request(FaultKind::VPNDriverCannotRun, u.to_string()).into())
}

/// Refuses moving a router to `driver` when one of its connections could not run there.
pub async fn check_router_connections(
    tx: &mut dyn Transaction,
    router_id: &str,
    driver: DriverKind,
) -> ApiResult<()> {
    for service in tx
        .load_referrers::<VpnService>(Kind::Router, router_id)
        .await?
    {
        for conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            let ike: IkePolicy = load(tx, &conn.ikepolicy_id).await?;
            let ipsec: IpsecPolicy = load(tx, &conn.ipsecpolicy_id).await?;
            capability::check(driver, &ike, &ipsec).map_err(|u| {
                Fault::bad_request(
                    FaultKind::VPNDriverCannotRun,
                    format!("connection {}: {u}", conn.id),
                )
            })?;
        }
    }
    Ok(())
}

/// `GET /v2.0/service-providers`: the drivers a service may run on.
pub fn providers(caller: &Caller, default: DriverKind) -> ApiResult<Value> {
    caller.require_read("get_service_provider")?;
    let list: Vec<Value> = [DriverKind::Strongswan, DriverKind::Libreswan]
        .into_iter()
        .map(|d| vpnaas_model::flavor::provider(d, default))
        .collect();
    Ok(json!({ "service_providers": list }))
}

/// Runs a flavor association change in one transaction.
pub async fn change_association(
    app: &crate::App,
    caller: &Caller,
    flavor_id: &str,
    change: Association<'_>,
) -> ApiResult<Option<Value>> {
    let mut tx = app.store.begin().await?;
    let answer = match change {
        Association::Add(body) => Some(associate(tx.as_mut(), caller, flavor_id, body).await?),
        Association::Remove(profile_id) => {
            disassociate(tx.as_mut(), caller, flavor_id, profile_id).await?;
            None
        }
    };
    tx.commit().await?;
    Ok(answer)
}

/// A change to a flavor's profiles.
pub enum Association<'a> {
    /// Associate the profile named in the body.
    Add(&'a Value),
    /// Remove this profile.
    Remove(&'a str),
}

/// `PUT /v2.0/routers/{id}/migrate_vpn_driver` (admin): moves every VPN service of the
/// router to `{"driver": …}`. The agent then stops the old daemon, starts the new one and
/// loads every connection; the answer says what moved.
pub async fn migrate_router(
    app: &crate::App,
    caller: &Caller,
    router_id: &str,
    body: &Value,
) -> ApiResult<Value> {
    caller.require_admin("migrate_vpn_driver")?;
    let driver = body["driver"]
        .as_str()
        .and_then(DriverKind::parse)
        .ok_or_else(|| {
            Fault::invalid_attribute(
                "driver",
                format!("must be one of {}", DriverKind::ALL.join(", ")),
            )
        })?;
    let mut tx = app.store.begin().await?;
    load::<vpnaas_model::network::Router>(tx.as_mut(), router_id).await?;
    let services = tx
        .as_mut()
        .load_referrers::<VpnService>(Kind::Router, router_id)
        .await?;
    if services.is_empty() {
        return Err(Fault::bad_request(
            FaultKind::RouterHasNoVPNService,
            format!("Router {router_id} has no VPN service to migrate"),
        )
        .into());
    }
    let previous = services[0].provider.unwrap_or(DriverKind::Strongswan);
    check_router_connections(tx.as_mut(), router_id, driver).await?;
    for mut service in services.iter().cloned() {
        service.provider = Some(driver);
        tx.as_mut().save(&service).await?;
    }
    let touched = super::notify::bump(tx.as_mut(), router_id).await?;
    tx.commit().await?;
    super::notify::notify(app, touched.into_iter().collect());
    tracing::info!(router = router_id, from = %previous, to = %driver, "VPN driver migration requested");
    Ok(
        json!({"router_id": router_id, "driver": driver, "previous_driver": previous, "services": services.len()}),
    )
}
