//! `vpnaas import neutron`: moves a running neutron-vpnaas deployment into vpnaas. Reads
//! every IKE policy, IPsec policy, endpoint group, VPN service and IPsec site connection
//! from Neutron ([`neutron`]), creates each in vpnaas through its API as an administrator
//! with the same id, project and attributes, in dependency order ([`plan`] maps and
//! compares), and reports per object what happened ([`report`]). An object vpnaas
//! refuses is reported with vpnaas's message and the import goes on; an object vpnaas
//! already holds is compared and, where it differs, updated as far as vpnaas allows, so a
//! second run changes nothing.

mod neutron;
mod plan;
mod report;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Map, Value};
use vpnaas_client::{Client, Error as ApiError, Identity};
use vpnaas_model::Kind;

use crate::output::Format;
use neutron::{KINDS, Neutron, NeutronArgs};
use plan::Comparison;
use report::{Entry, Outcome, Report};

/// Flags of `vpnaas import neutron`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    neutron: NeutronArgs,
}

/// Runs the import; prints the report; fails when an object could not be taken as it is.
pub async fn run(
    vpnaas: &Client,
    has_identity: bool,
    format: Format,
    args: &ImportArgs,
) -> Result<()> {
    let neutron = Neutron::connect(&args.neutron).await?;
    let vpnaas = match (&neutron.token, has_identity) {
        (_, true) => vpnaas.clone(),
        // The same Keystone token, for a vpnaas under `auth = "keystone"`.
        (Some(token), false) => vpnaas.with_identity(Identity {
            token: Some(token.clone()),
            ..Identity::default()
        }),
        (None, false) => bail!(
            "no identity for vpnaas: give --token (or --project and --roles admin), or log in to Keystone"
        ),
    };
    let mut report = Report::default();
    for kind in KINDS {
        for object in neutron.read_all(kind).await? {
            let entry = import_one(&vpnaas, kind, &object, &report).await?;
            report.push(entry);
        }
    }
    println!("{}", report.render(format));
    if report.failed() {
        let s = &report.summary;
        bail!(
            "{} objects refused and {} left differing by vpnaas (see the report)",
            s.refused,
            s.differs
        );
    }
    Ok(())
}

/// Imports one object; an API refusal becomes the entry's reason, anything else (vpnaas
/// unreachable, an answer that is not the API's) stops the import.
async fn import_one(vpnaas: &Client, kind: Kind, object: &Value, so_far: &Report) -> Result<Entry> {
    let desired = plan::desired(kind, object);
    let id = object["id"].as_str().unwrap_or_default();
    let result = match vpnaas.show(kind, id).await {
        Ok(held) => reconcile(vpnaas, kind, object, &desired, &held).await,
        Err(ApiError::Api { status: 404, .. }) => vpnaas
            .create(kind, Value::Object(desired))
            .await
            .map(|_| Entry::new(kind, object, Outcome::Created)),
        Err(other) => Err(other),
    };
    match result {
        Ok(entry) => Ok(entry),
        Err(ApiError::Api { message, .. }) => {
            let mut entry = Entry::new(kind, object, Outcome::Refused);
            entry.reason = Some(explained(kind, object, message, so_far));
            Ok(entry)
        }
        Err(other) => Err(other.into()),
    }
}

/// An object vpnaas holds: unchanged, updated to Neutron's values, or reported as
/// differing where no PUT may change it.
async fn reconcile(
    vpnaas: &Client,
    kind: Kind,
    object: &Value,
    desired: &Map<String, Value>,
    held: &Value,
) -> Result<Entry, ApiError> {
    let (updatable, fixed) = match plan::compare(kind, desired, held) {
        Comparison::Same => return Ok(Entry::new(kind, object, Outcome::Unchanged)),
        Comparison::Differs { updatable, fixed } => (updatable, fixed),
    };
    let updated: Vec<String> = updatable.keys().cloned().collect();
    if !updatable.is_empty() {
        vpnaas
            .update(
                kind,
                held["id"].as_str().unwrap_or_default(),
                Value::Object(updatable),
            )
            .await?;
    }
    let mut entry = Entry::new(kind, object, Outcome::Updated);
    entry.attributes = updated;
    if !fixed.is_empty() {
        entry.outcome = Outcome::Differs;
        entry.reason = Some(format!(
            "vpnaas holds other values of {} and cannot change them",
            fixed.join(", ")
        ));
        entry.attributes.extend(fixed);
    }
    Ok(entry)
}

/// vpnaas's message, with what explains it when an object this one refers to was not
/// imported.
fn explained(kind: Kind, object: &Value, message: String, so_far: &Report) -> String {
    let missing: Vec<String> = plan::references(kind, object)
        .into_iter()
        .filter(|(target, id)| so_far.failed_object(*target, id))
        .map(|(target, id)| format!("{} {id}", target.singular()))
        .collect();
    if missing.is_empty() {
        message
    } else {
        format!("{message} (not imported: {})", missing.join(", "))
    }
}
