//! Who the dashboard acts as: the identity a person gave at login (under noauth a project
//! and a role, else a token), kept in an `HttpOnly`, `SameSite=Strict` cookie and
//! presented to the API's own [`Caller`] extractor on every request, exactly as a client
//! presents its headers. Nothing here decides what the identity may do.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, Request, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::{Deserialize, Serialize};
use vpnaas_model::Error as Fault;

use super::{field, form, go_to, view};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::{App, AuthMode};

const COOKIE: &str = "vpnaas_dashboard";
/// The roles one may pick under noauth (what `X-Roles` would say).
const ROLES: [&str; 3] = ["admin", "member", "reader"];

/// The identity of a dashboard session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Session {
    /// noauth: `X-Project-Id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    project: Option<String>,
    /// noauth: `X-Roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roles: Option<String>,
    /// token and keystone: `X-Auth-Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl Session {
    /// The session a request's cookie holds, if any.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Session> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let value = cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)?
            .1;
        let json = URL_SAFE_NO_PAD.decode(value).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// Who the API takes this session for: the same extractor, the same headers.
    pub(crate) async fn caller(&self, app: &App) -> ApiResult<Caller> {
        let mut request = Request::builder();
        let headers = [
            ("x-project-id", &self.project),
            ("x-roles", &self.roles),
            ("x-auth-token", &self.token),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        let (mut parts, ()) = request
            .body(())
            .map_err(|_| Fault::http_bad_request("Invalid identity in the dashboard session"))?
            .into_parts();
        let caller = Caller::from_request_parts(&mut parts, app).await?;
        caller.require_read("get_dashboard")?;
        Ok(caller)
    }

    fn cookie(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict",
            URL_SAFE_NO_PAD.encode(json)
        )
    }
}

/// The login page: what the server's `auth` asks for.
pub(crate) async fn page(State(app): State<App>) -> Response {
    let noauth = app.settings.auth == AuthMode::Noauth;
    let body = html! {
        h1 { "Sign in" }
        form.card data-json action="/dashboard/login" method="post" {
            @if noauth {
                p { "This server trusts identity headers (noauth): pick a project and a role." }
                label { "Project" input name="project" value=(app.settings.default_project) required autofocus; }
                label { "Role"
                    select name="role" { @for role in ROLES { option value=(role) { (role) } } }
                }
            } @else {
                p { "Paste a token the API accepts (X-Auth-Token)." }
                label { "Token" input name="token" type="password" required autofocus autocomplete="off"; }
            }
            p.error role="alert" {}
            button type="submit" { "Sign in" }
        }
    };
    view::bare("Sign in", body).into_response()
}

/// Checks the identity given with the API's extractor, then keeps it in the cookie.
pub(crate) async fn login(State(app): State<App>, body: Bytes) -> Response {
    match sign_in(&app, &body).await {
        Ok(session) => {
            let mut answer = go_to("/dashboard");
            if let Ok(cookie) = session.cookie().parse() {
                answer.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            answer
        }
        Err(error) => error.into_response(),
    }
}

async fn sign_in(app: &App, body: &Bytes) -> ApiResult<Session> {
    let fields = form(body)?;
    let text = |name| field(&fields, name).map(String::from);
    let session = match app.settings.auth {
        AuthMode::Noauth => Session {
            project: text("project"),
            roles: text("role"),
            token: None,
        },
        AuthMode::Token | AuthMode::Keystone => Session {
            token: text("token"),
            ..Session::default()
        },
    };
    session.caller(app).await?;
    Ok(session)
}

/// Forgets the session.
pub(crate) async fn logout() -> Response {
    let mut answer = go_to("/dashboard/login");
    let expired = format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(cookie) = expired.parse() {
        answer.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    answer
}
