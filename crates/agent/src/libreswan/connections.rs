//! pluto's connections: the files they are read from (`ipsec.conf`, `ipsec.secrets`,
//! private to root), adding one (`addconn`), deleting one with all its instances,
//! initiating the bi-directional ones, and re-authenticating one when asked.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::{Initiator, StatusReason};

use super::{Control, LibreswanConfig, conf, status};
use crate::status::Failure;
use crate::{Error, Result, command};

/// Why Libreswan cannot hold `spec` (an algorithm it lacks, a value it would misread).
pub(super) fn refusal(spec: &ConnectionSpec) -> Option<Failure> {
    let error = conf::Conn::of(spec).err()?;
    Some((StatusReason::NoProposalChosen, error.to_string()))
}

/// Puts the certificates of the wanted `cert` connections in the NSS database, writes
/// every wanted connection to `ipsec.conf` and the keys to `ipsec.secrets`, and has pluto
/// read the secrets again.
pub(super) async fn write_files(control: &Control, wanted: &[&ConnectionSpec]) -> Result<()> {
    for spec in wanted {
        super::nss::install(&control.dir, spec).await?;
    }
    let conns = wanted
        .iter()
        .map(|spec| conf::Conn::of(spec))
        .collect::<Result<Vec<_>, _>>()?;
    write_private(&control.dir.join("ipsec.conf"), &conf::render(&conns))?;
    write_private(&control.dir.join("ipsec.secrets"), &conf::secrets(wanted)?)?;
    control.whack.run(&["--rereadsecrets"]).await?;
    Ok(())
}

/// Adds a connection written to `ipsec.conf`; what pluto's log said of an earlier version
/// of it is forgotten.
pub(super) async fn add(
    config: &LibreswanConfig,
    control: &Control,
    spec: &ConnectionSpec,
) -> Result<()> {
    let socket = control.whack.socket.to_string_lossy();
    let file = control.dir.join("ipsec.conf");
    command::run(
        &config.tool("addconn").to_string_lossy(),
        &[
            "--ctlsocket",
            &socket,
            "--config",
            &file.to_string_lossy(),
            &spec.id,
        ],
    )
    .await?;
    if let Ok(mut failures) = control.failures.lock() {
        failures.remove(&spec.id);
    }
    Ok(())
}

/// The names pluto has loaded for connection `id`: itself and its instances (`<id>/1x2` …).
async fn instances(control: &Control, id: &str) -> Result<Vec<String>> {
    let listed = control.whack.run(&["--status"]).await?;
    Ok(status::connection_names(&listed)
        .into_iter()
        .filter(|name| name == id || name.starts_with(&format!("{id}/")))
        .collect())
}

/// Deletes a loaded connection and all its instances.
pub(super) async fn delete(control: &Control, id: &str) -> Result<()> {
    for name in instances(control, id).await? {
        control.whack.run(&["--name", &name, "--delete"]).await?;
    }
    if let Ok(mut failures) = control.failures.lock() {
        failures.remove(id);
    }
    Ok(())
}

/// Has pluto listen on its addresses, then initiates the new bi-directional connections.
pub(super) async fn initiate(control: &Control, new: &[&ConnectionSpec]) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    control.whack.run(&["--listen"]).await?;
    let initiated = new
        .iter()
        .filter(|spec| spec.initiator == Initiator::BiDirectional);
    for spec in initiated {
        for name in instances(control, &spec.id).await? {
            control
                .whack
                .run(&["--name", &name, "--asynchronous", "--initiate"])
                .await?;
        }
    }
    Ok(())
}

/// Re-authenticates a connection now. pluto has no forced re-authentication of an IKE SA
/// (`--rekey-ike` rekeys without authenticating): its SAs are terminated and negotiated
/// again at once, with the secrets as pluto read them last (break before make).
pub(super) async fn reauthenticate(control: &Control, spec: &ConnectionSpec) -> Result<()> {
    let names = instances(control, &spec.id).await?;
    for name in &names {
        control.whack.run(&["--name", name, "--terminate"]).await?;
    }
    for name in &names {
        control
            .whack
            .run(&["--name", name, "--asynchronous", "--initiate"])
            .await?;
    }
    Ok(())
}

/// Writes a file only root may read (it may hold keys).
pub(super) fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(Error::file(path))
}
