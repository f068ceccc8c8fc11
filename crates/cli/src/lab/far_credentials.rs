//! A `cert` connection's credentials on an unmanaged site, put where the downloaded peer
//! configuration says: the far end's certificate and key (`--certificate`/`--key`, a PKI
//! of its own, else issued by the project's CA through `peer-credentials`) and the
//! project's CA, which vouches for the vpnaas gateway. strongSwan reads them as files in
//! its swanctl directory; Libreswan from its NSS database, imported with the commands
//! the download's comments give (`certutil -A … -t CT,,` for the CA, the PKCS#12 bundle
//! with `pk12util`, what `ipsec import` runs), pointed at the site's database.

use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::Value;
use vpnaas_agent::command;
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::peer_config::certificates::{
    CA, CA_FILE, PEER, PEER_CERTIFICATE_FILE, PEER_KEY_FILE, PEER_PKCS12_FILE,
};

use super::unmanaged::write_private;

/// The far end's own certificate and key.
pub struct Credentials {
    /// Its certificate, PEM.
    certificate: String,
    /// Its key, PEM.
    key: String,
    /// As `peer-credentials` bundled them: PKCS#12 and its password (none for a PKI of
    /// the site's own).
    pkcs12: Option<(Vec<u8>, String)>,
}

impl Credentials {
    /// `certificate` and `key` (files, PEM) when given, else credentials the project's
    /// CA issues the connection's peer.
    pub async fn obtain(
        client: &Client,
        conn_id: &str,
        own: Option<(&Path, &Path)>,
    ) -> Result<Credentials> {
        if let Some((certificate, key)) = own {
            return Ok(Credentials {
                certificate: std::fs::read_to_string(certificate).context("--certificate")?,
                key: std::fs::read_to_string(key).context("--key")?,
                pkcs12: None,
            });
        }
        let issued = client.peer_credentials(conn_id).await?;
        let text = |field: &str| issued[field].as_str().unwrap_or_default().to_string();
        let bundle = base64::engine::general_purpose::STANDARD
            .decode(text("pkcs12"))
            .context("peer-credentials' pkcs12 is not base64")?;
        Ok(Credentials {
            certificate: text("certificate"),
            key: text("private_key"),
            pkcs12: Some((bundle, text("pkcs12_password"))),
        })
    }
}

/// Puts the credentials where the downloaded swanctl.conf names them (under `dir`'s
/// `swanctl`), with the CA the connection's VPN service shows.
pub async fn install_swanctl(
    client: &Client,
    conn: &Value,
    credentials: &Credentials,
    dir: &Path,
) -> Result<()> {
    let swanctl = dir.join("swanctl");
    for sub in ["x509", "x509ca", "private"] {
        std::fs::create_dir_all(swanctl.join(sub)).context("swanctl directory")?;
    }
    let service_id = conn["vpnservice_id"].as_str().unwrap_or_default();
    let service = client.show(Kind::VpnService, service_id).await?;
    let Some(ca) = service["ca_certificate"].as_str() else {
        bail!("the connection's VPN service shows no ca_certificate");
    };
    std::fs::write(
        swanctl.join("x509").join(PEER_CERTIFICATE_FILE),
        &credentials.certificate,
    )
    .context("certificate")?;
    write_private(
        &swanctl.join("private").join(PEER_KEY_FILE),
        &credentials.key,
    )?;
    std::fs::write(swanctl.join("x509ca").join(CA_FILE), ca).context("CA certificate")?;
    Ok(())
}

/// Imports the credentials into the NSS database `dir/nss`: the CA of the download's
/// `vpnaas-ca.pem` part (`ca`) trusted `CT,,`, then the certificate and key as PKCS#12
/// with the friendly name the download's `leftcert` names. The bundle is written private
/// and removed once imported.
pub async fn import_nss(credentials: &Credentials, ca: &str, dir: &Path) -> Result<()> {
    let db = format!("sql:{}", dir.join("nss").display());
    let ca_file = dir.join(CA_FILE);
    std::fs::write(&ca_file, ca).context("CA certificate")?;
    let ca_path = ca_file.to_string_lossy();
    command::run(
        "certutil",
        &[
            "-A", "-d", &db, "-n", CA, "-t", "CT,,", "-a", "-i", &ca_path,
        ],
    )
    .await?;
    let bundle = dir.join(PEER_PKCS12_FILE);
    let password = match &credentials.pkcs12 {
        Some((bytes, password)) => {
            write_private(&bundle, bytes)?;
            password.clone()
        }
        None => export_own(credentials, dir, &bundle).await?,
    };
    let path = bundle.to_string_lossy();
    let imported = command::run("pk12util", &["-i", &path, "-d", &db, "-W", &password]).await;
    let _ = std::fs::remove_file(&bundle);
    imported?;
    Ok(())
}

/// The site's own certificate and key as PKCS#12 named `vpnaas-peer` (what an operator
/// with a PKI of its own makes), under an empty password; returns the password.
async fn export_own(credentials: &Credentials, dir: &Path, bundle: &Path) -> Result<String> {
    let (certificate, key) = (dir.join("own.pem"), dir.join("own.key"));
    std::fs::write(&certificate, &credentials.certificate).context("certificate")?;
    write_private(&key, &credentials.key)?;
    let exported = command::run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-name",
            PEER,
            "-in",
            &certificate.to_string_lossy(),
            "-inkey",
            &key.to_string_lossy(),
            "-passout",
            "pass:",
            "-out",
            &bundle.to_string_lossy(),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&key);
    exported?;
    Ok(String::new())
}
