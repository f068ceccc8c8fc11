//! `GET /v2.0/vpn/ipsec-site-connections/{id}/peer-config`: the configuration of a
//! connection's far end (see [`crate::peer_config`]), or the list of formats when no
//! `format` is asked. Whoever may read the connection gets it with a placeholder for the
//! pre-shared key; the key itself only for `include_secret=true` from a caller who may
//! change the connection (a reader asking for it is refused, as Neutron refuses an action
//! its policy does not allow).

use serde_json::{Value, json};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, FaultKind, Kind};

use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::peer_config::{self, FarEnd, Format, Secret};

/// What the caller asked for, from the query string.
#[derive(Debug, Default)]
pub struct Request {
    /// `format`, if given.
    pub format: Option<String>,
    /// `include_secret`, if given.
    pub include_secret: Option<String>,
}

impl Request {
    /// The parameters of a query string (the first of each repeated one).
    pub fn from_query(query: Option<&str>) -> Request {
        let mut request = Request::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "format" if request.format.is_none() => request.format = Some(value.into()),
                "include_secret" if request.include_secret.is_none() => {
                    request.include_secret = Some(value.into())
                }
                _ => {}
            }
        }
        request
    }
}

/// The answer: the formats, or one far end's configuration.
pub enum Answer {
    /// `{"peer_config_formats": [...]}`.
    Formats(Value),
    /// The configuration text; `secret` when it holds the key.
    Config {
        /// The text.
        text: String,
        /// Whether the key is in it.
        secret: bool,
    },
}

/// The list of formats.
pub fn formats() -> Value {
    let formats: Vec<Value> = Format::ALL
        .iter()
        .map(|f| json!({"name": f.name(), "description": f.description(), "files": f.files()}))
        .collect();
    json!({ "peer_config_formats": formats })
}

fn parse_format(text: &str) -> Result<Format, Fault> {
    Format::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        Fault::invalid_attribute(
            "format",
            format!("'{text}' is not one of {}", names.join(", ")),
        )
    })
}

fn parse_include_secret(text: Option<&str>) -> Result<bool, Fault> {
    match text {
        None | Some("false" | "False") => Ok(false),
        Some("true" | "True") => Ok(true),
        Some(other) => Err(Fault::invalid_attribute(
            "include_secret",
            format!("'{other}' is not true or false"),
        )),
    }
}

/// The far end's configuration of connection `id` in the asked format, or the formats.
pub async fn peer_config(
    app: &App,
    caller: &Caller,
    id: &str,
    request: &Request,
) -> ApiResult<Answer> {
    let format = request.format.as_deref().map(parse_format).transpose()?;
    let include_secret = parse_include_secret(request.include_secret.as_deref())?;
    // Visibility and the right to read, answered as for `GET` of the connection.
    super::show(app, caller, Kind::SiteConnection, id).await?;
    let Some(format) = format else {
        return Ok(Answer::Formats(formats()));
    };
    if include_secret {
        // The connection is the caller's (or the caller is admin): `show` saw it.
        caller.require_write("get_ipsec_site_connection:psk")?;
    }
    let mut tx = app.store.read().await?;
    let conn: SiteConnection = tx
        .load(id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::SiteConnection, id))?;
    // The project's CA that issued the gateway's certificate, as the service shows it.
    let service: Option<VpnService> = tx.load(&conn.vpnservice_id).await?;
    drop(tx);
    let vpnaas_ca = service.and_then(|s| s.ca_certificate);
    let unavailable = |why: String| {
        Fault::conflict(
            FaultKind::PeerConfigUnavailable,
            format!(
                "The far end of IPsec site connection {id} cannot be written as {}: {why}.",
                format.name()
            ),
        )
    };
    let ours = super::desired::connection(app, conn)
        .await?
        .map_err(unavailable)?;
    let secret = match include_secret {
        true => Secret::Included(ours.psk.clone()),
        false => Secret::Placeholder,
    };
    let far =
        FarEnd::of(&ours, secret, vpnaas_ca.as_deref()).map_err(|e| unavailable(e.to_string()))?;
    let text = peer_config::render(format, &far).map_err(|e| unavailable(e.to_string()))?;
    Ok(Answer::Config {
        text,
        secret: include_secret,
    })
}
