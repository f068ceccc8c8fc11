//! The use cases behind the HTTP routes: list and show with visibility and redaction,
//! and create / update / delete with Neutron's validation order and guards, each write in
//! one store transaction so a guard and the change it allows cannot be split.
//!
//! Writes are routed per kind by `Owner` to a family (vpn, inventory, flavors) that
//! checks the request and returns the typed object ([`Stored`]); `create` and `update`
//! save it once, then tell the agents. JSON is made of it only at the HTTP edge.

pub mod agents;
pub mod certificates;
pub mod desired;
pub mod flavors;
pub mod guards;
mod inventory;
pub mod liveness;
pub mod notify;
pub mod peer_config;
pub mod ports;
pub mod rotation;
pub mod scheduler;
pub mod status;
mod stored;
pub mod tags;
pub mod takeover;
mod vpn;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use vpnaas_model::agent::Agent;
use vpnaas_model::attr::{self, Requester};
use vpnaas_model::enums::StatusReason;
use vpnaas_model::network::{Network, Router, Subnet};
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, Kind, Resource, attributes};
use vpnaas_store::{Record, Transaction};

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::listing::ListQuery;

pub use inventory::{InterfaceChange, change_router_interface};
pub use stored::Stored;

/// What readers see instead of a secret.
pub const REDACTED: &str = "***";

/// Which use cases own a kind: the one table that routes create, update and delete. Each
/// family matches its own kinds without a catch-all, so a new kind compiles only once it
/// is placed here and handled by its family.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Vpn(vpn::VpnKind),
    Inventory(inventory::InventoryKind),
    Flavors(flavors::FlavorKind),
    /// Agents exist by their heartbeats; the internal kinds (never routed) by the use
    /// cases that issue certificates.
    ReadOnly,
}

impl Owner {
    fn of(kind: Kind) -> Owner {
        use flavors::FlavorKind as F;
        use inventory::InventoryKind as I;
        use vpn::VpnKind as V;
        match kind {
            Kind::IkePolicy => Owner::Vpn(V::IkePolicy),
            Kind::IpsecPolicy => Owner::Vpn(V::IpsecPolicy),
            Kind::EndpointGroup => Owner::Vpn(V::EndpointGroup),
            Kind::VpnService => Owner::Vpn(V::VpnService),
            Kind::SiteConnection => Owner::Vpn(V::SiteConnection),
            Kind::Network => Owner::Inventory(I::Network),
            Kind::Subnet => Owner::Inventory(I::Subnet),
            Kind::Router => Owner::Inventory(I::Router),
            Kind::Flavor => Owner::Flavors(F::Flavor),
            Kind::ServiceProfile => Owner::Flavors(F::ServiceProfile),
            Kind::Agent | Kind::CertificateAuthority | Kind::GatewayCredential => Owner::ReadOnly,
        }
    }
}

/// Lists the visible objects of a kind that pass the query, paged: returns the JSON body
/// (`{"<plural>": [...], "<plural>_links": [...]}`).
pub async fn list(
    app: &App,
    caller: &Caller,
    kind: Kind,
    query: &ListQuery,
    base_url: &str,
) -> ApiResult<String> {
    require_read(caller, kind)?;
    let records = visible_records(app, caller, kind, query.single_project()).await?;
    let liveness = liveness::Liveness::of(app);
    let needs_documents =
        !query.is_plain() || matches!(kind, Kind::Agent | Kind::Flavor) || redacts(caller, kind);
    let (items, links): (Vec<String>, Vec<Value>) = if needs_documents {
        let mut visible_items = Vec::with_capacity(records.len());
        for record in &records {
            let mut item: Value = serde_json::from_str(&record.body)?;
            if kind == Kind::Agent {
                agents::decorate_agent(&mut item, &liveness);
            }
            if query.matches(&item) {
                visible_items.push(redact(caller, kind, item));
            }
        }
        let (page, links) = query.finish(kind, visible_items, base_url)?;
        (page.iter().map(Value::to_string).collect(), links)
    } else {
        let (page, links) = query.paginate(kind, records, |r| Some(r.id.as_str()), base_url)?;
        (page.into_iter().map(|r| r.body).collect(), links)
    };
    let mut body = format!("{{\"{}\":[{}]", kind.plural(), items.join(","));
    if !links.is_empty() {
        body.push_str(&format!(
            ",\"{}_links\":{}",
            kind.plural(),
            Value::Array(links)
        ));
    }
    body.push('}');
    Ok(body)
}

/// The objects of a kind the caller sees, oldest first, read by the store through its
/// indexes: a member's project and what is shared with every project; for an
/// administrator every object, or `only_project`'s (and the shared ones) when given.
pub(crate) async fn visible_records(
    app: &App,
    caller: &Caller,
    kind: Kind,
    only_project: Option<&str>,
) -> ApiResult<Vec<Record>> {
    let project = match (caller.is_admin(), only_project) {
        (false, _) => Some(caller.project_id.as_str()),
        (true, only) => only,
    };
    Ok(match project {
        Some(project) => app.store.list_visible(kind, project).await?,
        None => app.store.list(kind).await?,
    })
}

/// Shows one visible object.
pub async fn show(app: &App, caller: &Caller, kind: Kind, id: &str) -> ApiResult<Value> {
    require_read(caller, kind)?;
    let record = app
        .store
        .get(kind, id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(kind, id))?;
    let mut item: Value = serde_json::from_str(&record.body)?;
    if kind == Kind::Agent {
        agents::decorate_agent(&mut item, &liveness::Liveness::of(app));
    }
    if !visible(app, caller, &record, &item).await? {
        return Err(Fault::resource_not_found(kind, id).into());
    }
    Ok(redact(caller, kind, item))
}

/// The last `limit` transitions of a connection the caller may see, oldest first.
pub async fn connection_events(
    app: &App,
    caller: &Caller,
    id: &str,
    limit: u32,
) -> ApiResult<Value> {
    show(app, caller, Kind::SiteConnection, id).await?;
    let events = app
        .store
        .events(id, limit.min(vpnaas_store::EVENTS_KEPT))
        .await?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(e))
        .collect::<Result<_, _>>()?;
    Ok(serde_json::json!({ "events": events }))
}

/// Readers may read; agents and service profiles are for admins only.
fn require_read(caller: &Caller, kind: Kind) -> Result<(), Fault> {
    let action = format!("get_{}", kind.policy_target());
    if matches!(kind, Kind::Agent | Kind::ServiceProfile) && !caller.is_admin() {
        return Err(Fault::forbidden(&action));
    }
    caller.require_read(&action)
}

/// Creates an object from a POST body; returns it as saved.
pub async fn create(app: &App, caller: &Caller, kind: Kind, body: Value) -> ApiResult<Stored> {
    caller.require_write(&format!("create_{}", kind.policy_target()))?;
    let who = Requester {
        project_id: &caller.project_id,
        is_admin: caller.is_admin(),
    };
    let mut fields = attr::parse_create(kind, attributes(kind), body, who, app.rules())?;
    let chosen_id = fields.contains_key("id");
    if !chosen_id {
        fields.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    }
    let resolved = match kind {
        Kind::SiteConnection => Some(vpn::resolve_peer(&fields).await),
        _ => None,
    };
    if let Some(neutron) = &app.neutron {
        let touched = crate::neutron::mirror::admit(app, neutron, caller, kind, &fields).await?;
        notify::notify(app, touched);
    }
    let mut tx = app.store.begin().await?;
    if chosen_id {
        refuse_existing_id(tx.as_mut(), kind, &fields).await?;
    }
    if kind == Kind::VpnService {
        let flavor = fields.get("flavor_id").and_then(Value::as_str);
        let driver =
            flavors::choose_driver(tx.as_mut(), flavor, app.settings.default_driver).await?;
        fields.insert("provider".into(), serde_json::json!(driver));
    }
    if let Some(reason) = initial_reason(app, tx.as_mut(), kind, &fields).await? {
        fields.insert("status_reason".into(), serde_json::json!(reason));
    }
    let mut created = match Owner::of(kind) {
        Owner::Vpn(vpn) => {
            vpn::create(tx.as_mut(), &app.settings, caller, vpn, fields, resolved).await?
        }
        Owner::Inventory(inv) => inventory::create(tx.as_mut(), caller, inv, fields).await?,
        Owner::Flavors(flavor) => flavors::create(caller, flavor, fields)?,
        Owner::ReadOnly => return Err(read_only(kind)),
    };
    if let Stored::Router(router) = &mut created {
        schedule(app, tx.as_mut(), router).await?;
    }
    created.save(tx.as_mut()).await?;
    let touched = touched_by(tx.as_mut(), &created).await?;
    tx.commit().await?;
    notify::notify(app, touched);
    Ok(created)
}

/// An id an administrator chose (see [`attr::Post::AdminOnly`]) must be new: the store
/// would otherwise overwrite the object that has it.
async fn refuse_existing_id(
    tx: &mut dyn Transaction,
    kind: Kind,
    fields: &Map<String, Value>,
) -> ApiResult<()> {
    let id = fields.get("id").and_then(Value::as_str).unwrap_or_default();
    match tx.get(kind, id).await? {
        Some(_) => Err(Fault::id_exists(kind, id).into()),
        None => Ok(()),
    }
}

fn read_only(kind: Kind) -> ApiError {
    Fault::http_bad_request(format!(
        "{} cannot be changed through the API",
        kind.plural()
    ))
    .into()
}

/// The reason a new VPN service or connection starts with: `NO_AGENT` when no live
/// agent hosts its router (nothing will act on it until one starts).
async fn initial_reason(
    app: &App,
    tx: &mut dyn Transaction,
    kind: Kind,
    fields: &Map<String, Value>,
) -> ApiResult<Option<StatusReason>> {
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(String::from);
    let router_id = match kind {
        Kind::VpnService => text("router_id"),
        Kind::SiteConnection => match text("vpnservice_id") {
            Some(service_id) => tx
                .load::<VpnService>(&service_id)
                .await?
                .map(|s| s.router_id),
            None => None,
        },
        _ => None,
    };
    // A router that does not exist is refused by the use case with its own error.
    let Some(router) = (match router_id {
        Some(id) => tx.load::<Router>(&id).await?,
        None => None,
    }) else {
        return Ok(None);
    };
    let liveness = liveness::Liveness::of(app);
    let agents: Vec<Agent> = tx.load_all().await?;
    let placement = scheduler::Placement::of(&agents, &[], &liveness);
    Ok(status::initial_reason(
        placement.hosting(&router, liveness.may_move()),
    ))
}

/// Places a new router, before it is first saved, on the live agent with the fewest
/// routers (if any is alive; an agent that registers later picks up unscheduled
/// routers). It is saved at revision 1.
async fn schedule(app: &App, tx: &mut dyn Transaction, router: &mut Router) -> ApiResult<()> {
    let (mut placement, _) = scheduler::Placement::load(tx, &liveness::Liveness::of(app)).await?;
    scheduler::reschedule(router, &mut placement, false);
    router.standard.revision_number = 1;
    Ok(())
}

/// The agent notifications a saved or removed object implies; bumps the affected
/// router's revision in the same transaction. Routers bump their own revision when they
/// are saved.
async fn touched_by(tx: &mut dyn Transaction, stored: &Stored) -> ApiResult<Vec<notify::Touched>> {
    let router_id = match stored {
        Stored::Router(router) => return Ok(notify::touched(router)),
        Stored::VpnService(service) => Some(service.router_id.clone()),
        Stored::SiteConnection(conn) => tx
            .load::<VpnService>(&conn.vpnservice_id)
            .await?
            .map(|s| s.router_id),
        Stored::IkePolicy(_)
        | Stored::IpsecPolicy(_)
        | Stored::EndpointGroup(_)
        | Stored::Network(_)
        | Stored::Subnet(_)
        | Stored::Flavor(_)
        | Stored::ServiceProfile(_) => None,
    };
    match router_id {
        Some(id) => Ok(notify::bump(tx, &id).await?),
        None => Ok(vec![]),
    }
}

/// Updates an object from a PUT body; returns it as saved.
pub async fn update(
    app: &App,
    caller: &Caller,
    kind: Kind,
    id: &str,
    body: Value,
) -> ApiResult<Stored> {
    caller.require_write(&format!("update_{}", kind.policy_target()))?;
    let changes = attr::parse_update(kind, attributes(kind), body, app.rules())?;
    let resolved = match kind {
        Kind::SiteConnection if changes.contains_key("peer_address") => {
            Some(vpn::resolve_peer(&changes).await)
        }
        _ => None,
    };
    let mut tx = app.store.begin().await?;
    let updated = match Owner::of(kind) {
        Owner::Vpn(vpn) => {
            vpn::update(
                tx.as_mut(),
                &app.settings,
                caller,
                vpn,
                id,
                changes,
                resolved,
            )
            .await?
        }
        Owner::Inventory(inv) => inventory::update(tx.as_mut(), caller, inv, id, changes).await?,
        Owner::Flavors(flavor) => flavors::update(tx.as_mut(), caller, flavor, id, changes).await?,
        Owner::ReadOnly => return Err(read_only(kind)),
    };
    updated.save(tx.as_mut()).await?;
    let touched = touched_by(tx.as_mut(), &updated).await?;
    tx.commit().await?;
    notify::notify(app, touched);
    Ok(updated)
}

/// Deletes an object after its guards pass.
pub async fn delete(app: &App, caller: &Caller, kind: Kind, id: &str) -> ApiResult<()> {
    caller.require_write(&format!("delete_{}", kind.policy_target()))?;
    let mut tx = app.store.begin().await?;
    let removed = match Owner::of(kind) {
        Owner::Vpn(vpn) => vpn::delete(tx.as_mut(), caller, vpn, id).await?,
        Owner::Inventory(inv) => inventory::delete(tx.as_mut(), caller, inv, id).await?,
        Owner::Flavors(flavor) => flavors::delete(tx.as_mut(), caller, flavor, id).await?,
        Owner::ReadOnly => return Err(read_only(kind)),
    };
    let touched = match removed {
        // The agents are told the router's next revision, at which it is gone.
        Stored::Router(mut router) => {
            router.standard.revision_number += 1;
            notify::touched(&router)
        }
        other => touched_by(tx.as_mut(), &other).await?,
    };
    tx.commit().await?;
    notify::notify(app, touched);
    Ok(())
}

/// Now as Neutron renders standard-attribute timestamps: RFC 3339, UTC, whole seconds
/// (`2026-12-03T08:00:00Z`).
pub(crate) fn timestamp() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| vpnaas_model::standard_attr::UNKNOWN_TIME.to_string())
}

/// Loads an object the caller may see, else `<Kind>NotFound`.
pub(crate) async fn fetch<R: Resource>(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
) -> ApiResult<R> {
    match tx.load::<R>(id).await? {
        Some(resource) if caller.owns(resource.project_id()) => Ok(resource),
        _ => Err(Fault::resource_not_found(R::KIND, id).into()),
    }
}

/// Builds a resource from validated attributes plus server-set fields.
pub(crate) fn build<R: DeserializeOwned>(
    mut fields: Map<String, Value>,
    extra: Vec<(&str, Value)>,
) -> ApiResult<R> {
    for (key, value) in extra {
        fields.insert(key.into(), value);
    }
    Ok(serde_json::from_value(Value::Object(fields))?)
}

/// Applies validated changes to a resource.
pub(crate) fn changed<R: Resource>(resource: &R, changes: Map<String, Value>) -> ApiResult<R> {
    let Value::Object(mut doc) = serde_json::to_value(resource)? else {
        return Err(ApiError::Internal("resource is not an object".into()));
    };
    attr::apply_update(&mut doc, changes);
    Ok(serde_json::from_value(Value::Object(doc))?)
}

/// Whether the caller sees a stored object: its own, one visible to all, or one seen with
/// an owner visible to all (a subnet of a shared or external network).
async fn visible(app: &App, caller: &Caller, record: &Record, item: &Value) -> ApiResult<bool> {
    if caller.owns(&record.project_id) || record.visible_to_all {
        return Ok(true);
    }
    let Some((owner_kind, owner_attr)) = record.kind.visible_with() else {
        return Ok(false);
    };
    let owner_id = item[owner_attr].as_str().unwrap_or_default();
    Ok(app
        .store
        .get(owner_kind, owner_id)
        .await?
        .is_some_and(|owner| owner.visible_to_all))
}

/// Whether the caller may see a network: its own, or a shared or external one.
pub(crate) fn network_visible(caller: &Caller, network: &Network) -> bool {
    caller.owns(&network.project_id) || network.visible_to_all()
}

/// Loads a subnet the caller may see (its own, or one on a shared or external network).
pub(crate) async fn fetch_visible_subnet(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
) -> ApiResult<Subnet> {
    let not_found = || ApiError::from(Fault::resource_not_found(Kind::Subnet, id));
    let subnet: Subnet = tx.load(id).await?.ok_or_else(not_found)?;
    if caller.owns(&subnet.project_id) {
        return Ok(subnet);
    }
    let network: Option<Network> = tx.load(&subnet.network_id).await?;
    match network {
        Some(n) if network_visible(caller, &n) => Ok(subnet),
        _ => Err(not_found()),
    }
}

/// Whether the caller is shown objects of `kind` with their secrets replaced.
fn redacts(caller: &Caller, kind: Kind) -> bool {
    !caller.sees_secrets() && attributes(kind).iter().any(|a| a.secret)
}

/// Replaces every secret attribute (as the attribute map marks them) for callers who may
/// not see secrets.
fn redact(caller: &Caller, kind: Kind, mut item: Value) -> Value {
    if !redacts(caller, kind) {
        return item;
    }
    for attr in attributes(kind).iter().filter(|a| a.secret) {
        if let Some(secret) = item.get_mut(attr.name) {
            *secret = Value::String(REDACTED.into());
        }
    }
    item
}
