//! A `cert` connection's credentials in the router's NSS database, where pluto reads
//! certificates and keys: the gateway's certificate and key under the nickname
//! `vpnaas-<service id>` (imported from a PKCS#12 bundle under a one-time random password,
//! written private and removed at once: NSS imports keys no other way), and the CA it
//! trusts for the peer (`CT,,`: a CA for peers' certificates). A renewed certificate
//! replaces the old one under the same nickname.

use std::path::Path;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::x509::X509;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::grammar;

use crate::{Error, Result, command};

/// The nickname of a connection's gateway certificate; `None` for a `psk` connection.
pub(super) fn nickname(spec: &ConnectionSpec) -> Result<Option<String>> {
    if spec.certificate.is_none() {
        return Ok(None);
    }
    grammar::check_uuid(&spec.service_id).map_err(|reason| Error::Invalid {
        field: "service_id",
        reason,
    })?;
    Ok(Some(format!("vpnaas-{}", spec.service_id)))
}

/// Puts the connection's certificate, key and trusted CA in the NSS database under `dir`.
pub(super) async fn install(dir: &Path, spec: &ConnectionSpec) -> Result<()> {
    let (Some(auth), Some(nickname)) = (&spec.certificate, nickname(spec)?) else {
        return Ok(());
    };
    let db = format!("sql:{}", dir.join("nss").display());
    let ca_nickname = format!("{nickname}-peer-ca");
    for old in [&nickname, &ca_nickname] {
        // Absent the first time; a renewal replaces it.
        let _ = command::run("certutil", &["-D", "-d", &db, "-n", old]).await;
    }
    command::run_with_input(
        "certutil",
        &["-A", "-d", &db, "-n", &ca_nickname, "-t", "CT,,", "-a"],
        Some(&auth.peer_ca),
    )
    .await?;
    let password = random_password()?;
    let bundle = bundle(
        &nickname,
        &auth.local_certificate,
        auth.local_key.expose(),
        &password,
    )?;
    let file = dir.join("nss").join("import.p12");
    write_private(&file, &bundle)?;
    // The password on pk12util's command line opens only this root-only file, which is
    // gone when pk12util is.
    let imported = command::run(
        "pk12util",
        &[
            "-i",
            &file.to_string_lossy(),
            "-d",
            &db,
            "-W",
            &password,
            "-K",
            "",
        ],
    )
    .await;
    let _ = std::fs::remove_file(&file);
    imported.map(|_| ())
}

/// The gateway's certificate and key as PKCS#12, named `nickname` (pk12util's nickname).
fn bundle(nickname: &str, certificate: &str, key: &str, password: &str) -> Result<Vec<u8>> {
    let invalid = |e: openssl::error::ErrorStack| Error::Invalid {
        field: "certificate",
        reason: e.to_string(),
    };
    let cert = X509::from_pem(certificate.as_bytes()).map_err(invalid)?;
    let key = PKey::private_key_from_pem(key.as_bytes()).map_err(invalid)?;
    Pkcs12::builder()
        .name(nickname)
        .pkey(&key)
        .cert(&cert)
        .build2(password)
        .and_then(|p| p.to_der())
        .map_err(invalid)
}

/// Writes a file only root may read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(Error::file(path))
}

fn random_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| Error::Invalid {
        field: "certificate",
        reason: e.to_string(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
