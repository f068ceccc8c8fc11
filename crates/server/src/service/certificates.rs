//! Certificate authentication's use cases (vpnaas extension). A project's CA is created
//! the first time one of its connections is made `cert`. Each VPN service then gets a
//! gateway certificate from it holding every identity its `cert` connections use (their
//! `local_id`, or the gateway address), reissued on the same key when a new identity
//! appears, when it nears expiry (`certificate_renew_days`), or when asked
//! (`POST …/vpnservices/{id}/renew-certificate`). A reissue bumps the credentials
//! generation of the service's `cert` connections: their agents load the new certificate
//! beside the SAs up, as they do a new pre-shared key. A peer without a PKI of its own
//! gets a certificate and key from the project's CA once (`POST
//! …/ipsec-site-connections/{id}/peer-credentials`); they are never stored.

use base64::Engine;
use serde_json::{Value, json};
use vpnaas_model::certificate::{CertificateAuthority, GatewayCredential, PrivateKey};
use vpnaas_model::enums::{AuthMode, DriverKind, IkeVersion};
use vpnaas_model::network::Router;
use vpnaas_model::policy::IkePolicy;
use vpnaas_model::site_connection::{Psk, SiteConnection};
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, FaultKind, Kind, address};
use vpnaas_store::Transaction;

use super::{Stored, notify};
use crate::App;
use crate::auth::Caller;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::pki::{self, PkiError};

impl From<PkiError> for ApiError {
    fn from(error: PkiError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// Checks what a connection authenticates with and readies it: a `psk` connection needs
/// its key and trusts no CA; a `cert` connection's `peer_ca_certificate` must be a CA fit
/// to trust, its pre-shared key is dropped, and its service's certificate is made to hold
/// its local identity.
pub(super) async fn prepare(
    tx: &mut dyn Transaction,
    settings: &Settings,
    conn: &mut SiteConnection,
    service: &VpnService,
    ike: &IkePolicy,
) -> ApiResult<()> {
    match conn.auth_mode {
        AuthMode::Psk => {
            if conn.peer_ca_certificate.is_some() {
                return Err(Fault::invalid_attribute(
                    "peer_ca_certificate",
                    "it applies to connections whose auth_mode is cert",
                )
                .into());
            }
            if conn.psk.expose().is_empty() {
                return Err(Fault::http_bad_request(
                    "Failed to parse request. Required attribute 'psk' not specified",
                )
                .into());
            }
            Ok(())
        }
        AuthMode::Cert => {
            if let Some(problem) = conn
                .peer_ca_certificate
                .as_deref()
                .and_then(pki::peer_ca_problem)
            {
                return Err(Fault::invalid_attribute("peer_ca_certificate", problem).into());
            }
            if service.provider == Some(DriverKind::Libreswan) {
                libreswan_can_hold(conn, ike)?;
            }
            conn.psk = Psk::default();
            let identity = local_identity(tx, conn, service).await?;
            ensure_certificate(tx, settings, service, identity).await
        }
    }
}

/// What Libreswan cannot do with certificates: sign with the gateway's EC key over IKEv1,
/// or trust a CA other than the one that issued the gateway's certificate (its implied
/// `rightca=%same`; naming another would put a tenant's DN in `ipsec.conf`).
fn libreswan_can_hold(conn: &SiteConnection, ike: &IkePolicy) -> ApiResult<()> {
    if ike.ike_version == IkeVersion::V1 {
        return Err(Fault::invalid_attribute(
            "auth_mode",
            "Libreswan signs with the gateway's EC key over IKEv2 only: use an IKEv2 policy",
        )
        .into());
    }
    if conn.peer_ca_certificate.is_some() {
        return Err(Fault::invalid_attribute(
            "peer_ca_certificate",
            "a Libreswan service trusts the project's CA only: leave it null",
        )
        .into());
    }
    Ok(())
}

/// The identity a connection's end authenticates as: its `local_id`, else the gateway
/// address of the peer's IP version.
async fn local_identity(
    tx: &mut dyn Transaction,
    conn: &SiteConnection,
    service: &VpnService,
) -> ApiResult<String> {
    if !conn.local_id.is_empty() {
        return Ok(conn.local_id.clone());
    }
    let router: Option<Router> = tx.load(&service.router_id).await?;
    conn.peer_address
        .ip()
        .and_then(|peer| router?.gateway_ip(address::version_of(peer)))
        .map(|ip| ip.to_string())
        .ok_or_else(|| ApiError::Internal("a checked connection without a gateway".into()))
}

/// The project's CA, created (and stored) when it has none.
async fn authority(tx: &mut dyn Transaction, project_id: &str) -> ApiResult<CertificateAuthority> {
    if let Some(ca) = tx.load(project_id).await? {
        return Ok(ca);
    }
    let ca = pki::new_authority(project_id)?;
    tx.save(&ca).await?;
    tracing::info!(
        project = project_id,
        "created the project's certificate authority"
    );
    Ok(ca)
}

/// Makes sure the service's certificate holds `identity` and is not due for renewal.
async fn ensure_certificate(
    tx: &mut dyn Transaction,
    settings: &Settings,
    service: &VpnService,
    identity: String,
) -> ApiResult<()> {
    let existing: Option<GatewayCredential> = tx.load(&service.id).await?;
    if let Some(credential) = &existing
        && credential.identities.contains(&identity)
        && !due(settings, credential)?
    {
        return Ok(());
    }
    let mut identities = existing
        .as_ref()
        .map(|c| c.identities.clone())
        .unwrap_or_default();
    if !identities.contains(&identity) {
        identities.push(identity);
    }
    let key = existing.map(|c| c.private_key);
    reissue(tx, settings, &service.id, identities, key).await
}

/// Whether a certificate is within `certificate_renew_days` of expiring.
fn due(settings: &Settings, credential: &GatewayCredential) -> ApiResult<bool> {
    let left = pki::seconds_left(&credential.certificate)?;
    Ok(left < i64::from(settings.certificate_renew_days) * 86_400)
}

/// Issues the service's certificate for `identities` (on `key` when it has one), shows it
/// on the service, and has its `cert` connections load it.
async fn reissue(
    tx: &mut dyn Transaction,
    settings: &Settings,
    service_id: &str,
    identities: Vec<String>,
    key: Option<PrivateKey>,
) -> ApiResult<()> {
    let mut service: VpnService = tx
        .load(service_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("VPN service {service_id} vanished")))?;
    let ca = authority(tx, &service.project_id).await?;
    let lifetime = i64::from(settings.certificate_days) * 86_400;
    let issued = pki::issue(&ca, &identities, key.as_ref(), lifetime)?;
    service.local_certificate_fingerprint = Some(pki::fingerprint(&issued.certificate)?);
    service.local_certificate = Some(issued.certificate.clone());
    service.local_certificate_not_after = Some(issued.not_after.clone());
    service.ca_certificate = Some(ca.certificate.clone());
    tx.save(&service).await?;
    tx.save(&GatewayCredential {
        id: service.id.clone(),
        tenant_id: service.project_id.clone(),
        project_id: service.project_id.clone(),
        certificate: issued.certificate,
        private_key: issued.private_key,
        identities,
        not_after: issued.not_after,
    })
    .await?;
    let connections: Vec<SiteConnection> = tx.load_referrers(Kind::VpnService, service_id).await?;
    for mut conn in connections {
        if conn.auth_mode == AuthMode::Cert {
            conn.key_rotation.credentials += 1;
            tx.save(&conn).await?;
        }
    }
    tracing::info!(
        service = service_id,
        "issued the VPN service's gateway certificate"
    );
    Ok(())
}

/// Forgets a deleted service's certificate and key.
pub(super) async fn forget(tx: &mut dyn Transaction, service_id: &str) -> ApiResult<()> {
    tx.delete(Kind::GatewayCredential, service_id).await?;
    Ok(())
}

/// `POST /v2.0/vpn/vpnservices/{id}/renew-certificate`: a new certificate for the same
/// key and identities; returns the service as the caller sees it.
pub async fn renew(app: &App, caller: &Caller, id: &str) -> ApiResult<Value> {
    caller.require_write("update_vpnservice")?;
    let mut tx = app.store.begin().await?;
    let service: VpnService = super::fetch(tx.as_mut(), caller, id).await?;
    let Some(credential) = tx.load::<GatewayCredential>(id).await? else {
        return Err(Fault::conflict(
            FaultKind::CertificateUnavailable,
            format!(
                "VPN service {id} has no certificate: none of its connections uses auth_mode cert"
            ),
        )
        .into());
    };
    reissue(
        tx.as_mut(),
        &app.settings,
        id,
        credential.identities,
        Some(credential.private_key),
    )
    .await?;
    let touched = super::touched_by(tx.as_mut(), &Stored::from(service)).await?;
    tx.commit().await?;
    notify::notify(app, touched);
    super::show(app, caller, Kind::VpnService, id).await
}

/// Renews every gateway certificate within `certificate_renew_days` of expiring; returns
/// how many it renewed.
pub async fn renew_due(app: &App) -> ApiResult<usize> {
    let mut tx = app.store.begin().await?;
    let credentials: Vec<GatewayCredential> = tx.load_all().await?;
    let (mut renewed, mut touched) = (0, Vec::new());
    for credential in credentials {
        if !due(&app.settings, &credential)? {
            continue;
        }
        let id = credential.id.clone();
        reissue(
            tx.as_mut(),
            &app.settings,
            &id,
            credential.identities,
            Some(credential.private_key),
        )
        .await?;
        renewed += 1;
        if let Some(service) = tx.load::<VpnService>(&id).await? {
            touched.extend(super::touched_by(tx.as_mut(), &Stored::from(service)).await?);
        }
    }
    tx.commit().await?;
    notify::notify(app, touched);
    Ok(renewed)
}

/// `POST /v2.0/vpn/ipsec-site-connections/{id}/peer-credentials`: a certificate for the
/// connection's `peer_id` from the project's CA, with its key, as PEM and as a PKCS#12
/// bundle under a random password, returned once and never stored.
pub async fn peer_credentials(app: &App, caller: &Caller, id: &str) -> ApiResult<Value> {
    caller.require_write("update_ipsec_site_connection")?;
    let mut tx = app.store.begin().await?;
    let conn: SiteConnection = super::fetch(tx.as_mut(), caller, id).await?;
    let unavailable = |why: &str| {
        ApiError::from(Fault::conflict(
            FaultKind::CertificateUnavailable,
            format!("IPsec site connection {id} {why}"),
        ))
    };
    if conn.auth_mode != AuthMode::Cert {
        return Err(unavailable("does not use auth_mode cert"));
    }
    if conn.peer_ca_certificate.is_some() {
        return Err(unavailable(
            "trusts another CA for its peer (peer_ca_certificate): set it to null to trust \
             the project's CA, which issues these",
        ));
    }
    let ca = authority(tx.as_mut(), &conn.project_id).await?;
    tx.commit().await?;
    let lifetime = i64::from(app.settings.certificate_days) * 86_400;
    let issued = pki::issue(&ca, std::slice::from_ref(&conn.peer_id), None, lifetime)?;
    let password = pki::random_password()?;
    let bundle = pki::pkcs12(&issued, &ca.certificate, &password)?;
    tracing::info!(connection = id, "issued credentials for the peer");
    Ok(json!({"peer_credentials": {
        "identity": conn.peer_id,
        "certificate": issued.certificate,
        "fingerprint": pki::fingerprint(&issued.certificate)?,
        "not_after": issued.not_after,
        "private_key": issued.private_key.expose(),
        "ca_certificate": ca.certificate,
        "pkcs12": base64::engine::general_purpose::STANDARD.encode(bundle),
        "pkcs12_password": password,
    }}))
}
