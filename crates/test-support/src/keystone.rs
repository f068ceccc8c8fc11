//! A Keystone of the test's own: Keystone 30 from `.venv-keystone` (made by
//! `scripts/setup.sh`; `VPNAAS_TEST_KEYSTONE_VENV` overrides) on a free loopback port, its
//! SQLite database and keys in a temporary directory, killed by pid when dropped (also
//! when the test fails). `keystone-manage db_sync`, `fernet_setup`, `credential_setup`
//! and `bootstrap` take ~14 s, so they run once per machine into a template under the
//! target directory (under a file lock); each Keystone starts from a copy of it.
//! Through the API it then gets two projects with an admin, a member and a reader each,
//! and two service users in project `service`: vpnaas's (role `service`) and Neutron's
//! (role `admin`, as a real deployment gives it, so keystonemiddleware may validate
//! tokens).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The Keystone release the template was made with (bump with setup.sh's pin), and the
/// template's own version (bump when `conf` or the bootstrap change).
const PIN: &str = "30.0.0";
const TEMPLATE: u32 = 5;
const ADMIN_PASSWORD: &str = "s3cret";
/// Name of vpnaas's service user.
pub const SERVICE_USER: &str = "vpnaas";
/// Password of vpnaas's service user.
pub const SERVICE_PASSWORD: &str = "pw-vpnaas";
/// Name of Neutron's service user.
pub const NEUTRON_USER: &str = "neutron";
/// Password of Neutron's service user.
pub const NEUTRON_PASSWORD: &str = "pw-neutron";
/// The project of both service users.
pub const SERVICE_PROJECT: &str = "service";

/// A user of a project: name and password (`pw-<name>`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub name: String,
    pub password: String,
    pub id: String,
}

/// A project with one user per role.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub admin: User,
    pub member: User,
    pub reader: User,
}

/// A running Keystone.
pub struct Keystone {
    child: Child,
    port: u16,
    /// `http://127.0.0.1:PORT/v3`.
    pub url: String,
    /// Its own admin's token (project `admin`).
    pub admin_token: String,
    /// Projects `p1` and `p2`.
    pub projects: [Project; 2],
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

/// The virtualenv Keystone runs from.
pub fn venv() -> PathBuf {
    std::env::var_os("VPNAAS_TEST_KEYSTONE_VENV").map_or_else(
        || crate::workspace_root().join(".venv-keystone"),
        PathBuf::from,
    )
}

fn conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[DEFAULT]\nlog_file = {d}/keystone.log\n[database]\nconnection = sqlite:///{d}/keystone.db\n\
         [identity]\npassword_hash_rounds = 4\n[token]\nprovider = fernet\nexpiration = 3600\n[fernet_tokens]\nkey_repository = {d}/fernet-keys\n\
         [fernet_receipts]\nkey_repository = {d}/fernet-receipts\n[credential]\nkey_repository = {d}/credential-keys\n"
    )
}

fn manage(conf: &Path, args: &[&str]) {
    let program = venv().join("bin/keystone-manage");
    let output = Command::new(&program)
        .arg("--config-file")
        .arg(conf)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/setup.sh to install Keystone",
                program.display()
            )
        });
    assert!(
        output.status.success(),
        "keystone-manage {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The bootstrapped and populated database and keys, made once per machine: the
/// `keystone-manage` steps, then Keystone started on it to create the projects and users
/// (their ids kept in `lab.json`).
async fn template() -> PathBuf {
    let root = crate::target_tmp();
    let dir = root.join(format!("keystone-template-{PIN}-{TEMPLATE}"));
    let lock = std::fs::File::create(root.join(format!("keystone-template-{PIN}.lock")))
        .expect("template lock file");
    lock.lock().expect("lock the template");
    if dir.join("done").exists() {
        return dir;
    }
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("template dir");
    let conf_path = dir.join("keystone.conf");
    std::fs::write(&conf_path, conf(&dir)).expect("template conf");
    let user = ["--keystone-user", "root", "--keystone-group", "root"];
    manage(&conf_path, &["db_sync"]);
    manage(&conf_path, &[&["fernet_setup"][..], &user].concat());
    manage(&conf_path, &[&["credential_setup"][..], &user].concat());
    manage(
        &conf_path,
        &[
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-public-url",
            "http://127.0.0.1:1/v3",
            // keystonemiddleware (Neutron's) looks for the internal one
            "--bootstrap-internal-url",
            "http://127.0.0.1:1/v3",
            "--bootstrap-region-id",
            "RegionOne",
        ],
    );
    let managed = started.elapsed();
    let mut keystone = Keystone::serve(&dir, None).await;
    keystone.populate().await;
    let lab = serde_json::to_string(&keystone.projects).expect("json");
    keystone.stop();
    std::fs::write(dir.join("lab.json"), lab).expect("lab.json");
    std::fs::write(dir.join("done"), "").expect("mark the template");
    eprintln!(
        "keystone template made in {:?} (keystone-manage {managed:?})",
        started.elapsed()
    );
    dir
}

impl Keystone {
    /// Starts one (from a copy of the template) with projects `p1`, `p2` and the
    /// service user.
    pub async fn start() -> Keystone {
        let started = Instant::now();
        let template = template().await;
        let dir = tempfile::tempdir().expect("tempdir");
        crate::copy_tree(&template, dir.path());
        let lab = std::fs::read_to_string(dir.path().join("lab.json")).expect("lab.json");
        let projects = serde_json::from_str(&lab).expect("lab.json parses");
        let path = dir.path().to_path_buf();
        let mut keystone = Keystone::serve(&path, Some(dir)).await;
        keystone.projects = projects;
        keystone.fix_identity_endpoint().await;
        eprintln!(
            "keystone on {} ready after {:?}",
            keystone.url,
            started.elapsed()
        );
        keystone
    }

    /// Serves the database and keys in `dir` on a free port, as its admin.
    async fn serve(dir: &Path, owned: Option<tempfile::TempDir>) -> Keystone {
        let conf_path = dir.join("keystone.conf");
        std::fs::write(&conf_path, conf(dir)).expect("conf");
        let port = crate::free_port();
        let script = crate::workspace_root().join("scripts/keystone_wsgi.py");
        let log = std::fs::File::create(dir.join("wsgi.log")).expect("log");
        let child = Command::new(venv().join("bin/python"))
            .arg(&script)
            .args(["127.0.0.1", &port.to_string()])
            .env("OS_KEYSTONE_CONFIG_FILES", &conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start Keystone (run scripts/setup.sh)");
        let mut keystone = Keystone {
            child,
            port,
            url: format!("http://127.0.0.1:{port}/v3"),
            admin_token: String::new(),
            projects: [empty_project(), empty_project()],
            http: reqwest::Client::new(),
            _dir: owned,
        };
        keystone.wait_until_up().await;
        keystone.admin_token = keystone
            .login("admin", ADMIN_PASSWORD, "admin")
            .await
            .expect("admin logs in");
        keystone
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn wait_until_up(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.http.get(&self.url).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Keystone exited ({status}); see its wsgi.log");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Keystone does not answer on {}",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A project-scoped token by password, `None` when refused.
    pub async fn login(&self, user: &str, password: &str, project: &str) -> Option<String> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.url))
            .json(&body)
            .send()
            .await
            .expect("Keystone answers");
        if !r.status().is_success() {
            return None;
        }
        Some(
            r.headers()["x-subject-token"]
                .to_str()
                .expect("token")
                .to_string(),
        )
    }

    /// A token of no project (unscoped).
    pub async fn login_unscoped(&self, user: &str, password: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password}}}}});
        let r = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.url))
            .json(&body)
            .send()
            .await
            .expect("Keystone answers");
        assert_eq!(r.status(), 201, "unscoped login");
        r.headers()["x-subject-token"]
            .to_str()
            .expect("token")
            .to_string()
    }

    /// Calls the Keystone API as its admin.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("x-auth-token", &self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.expect("Keystone answers");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Revokes a token (`DELETE /v3/auth/tokens`).
    pub async fn revoke(&self, token: &str) {
        let r = self
            .http
            .delete(format!("{}/auth/tokens", self.url))
            .header("x-auth-token", &self.admin_token)
            .header("x-subject-token", token)
            .send()
            .await
            .expect("Keystone answers");
        assert_eq!(r.status(), 204, "revocation");
    }

    async fn fix_identity_endpoint(&self) {
        let endpoints = self.call(reqwest::Method::GET, "/endpoints", None).await;
        for endpoint in endpoints["endpoints"].as_array().expect("endpoints") {
            let id = endpoint["id"].as_str().expect("id");
            let body = json!({"endpoint": {"url": self.url}});
            self.call(
                reqwest::Method::PATCH,
                &format!("/endpoints/{id}"),
                Some(body),
            )
            .await;
        }
    }

    /// Puts `url` in the catalog (public and internal, region `RegionOne`) as a service
    /// of `service_type`: `network` is where openstacksdk and the `openstack` CLI look for
    /// Neutron (vpnaas itself, or the front before both).
    pub async fn register_endpoint(&self, service_type: &str, url: &str) {
        let service = self
            .call(
                reqwest::Method::POST,
                "/services",
                Some(json!({"service": {"type": service_type, "name": service_type}})),
            )
            .await;
        let id = service["service"]["id"].as_str().expect("service id");
        for interface in ["public", "internal"] {
            let body = json!({"endpoint": {"service_id": id, "interface": interface,
                "url": url, "region_id": "RegionOne"}});
            self.call(reqwest::Method::POST, "/endpoints", Some(body))
                .await;
        }
    }

    async fn role_id(&self, name: &str) -> String {
        let found = self
            .call(reqwest::Method::GET, &format!("/roles?name={name}"), None)
            .await;
        if let Some(id) = found["roles"][0]["id"].as_str() {
            return id.to_string();
        }
        let made = self
            .call(
                reqwest::Method::POST,
                "/roles",
                Some(json!({"role": {"name": name}})),
            )
            .await;
        made["role"]["id"].as_str().expect("role id").to_string()
    }

    async fn project(&self, name: &str) -> String {
        let made = self
            .call(
                reqwest::Method::POST,
                "/projects",
                Some(json!({"project": {"name": name, "domain_id": "default"}})),
            )
            .await;
        made["project"]["id"]
            .as_str()
            .expect("project id")
            .to_string()
    }

    /// vpnaas's service user where it uses Neutron's routers (`inventory = "neutron"`):
    /// `admin` in project `service`, since it both validates tokens and reads every
    /// project's routers and their ports in Neutron. Made on first call.
    pub async fn cloud_service_user(&self) -> User {
        let name = "vpnaas-cloud";
        let found = self
            .call(reqwest::Method::GET, &format!("/users?name={name}"), None)
            .await;
        if let Some(id) = found["users"][0]["id"].as_str() {
            return User {
                name: name.into(),
                password: format!("pw-{name}"),
                id: id.into(),
            };
        }
        let service = self
            .call(
                reqwest::Method::GET,
                &format!("/projects?name={SERVICE_PROJECT}"),
                None,
            )
            .await;
        let service = service["projects"][0]["id"]
            .as_str()
            .expect("project service");
        self.user(name, service, "admin").await
    }

    /// A user with `role` on `project_id`, password `pw-<name>`.
    pub async fn user(&self, name: &str, project_id: &str, role: &str) -> User {
        let password = format!("pw-{name}");
        let made = self
            .call(
                reqwest::Method::POST,
                "/users",
                Some(json!({"user": {"name": name, "domain_id": "default", "password": password}})),
            )
            .await;
        let id = made["user"]["id"].as_str().expect("user id").to_string();
        let role_id = self.role_id(role).await;
        self.call(
            reqwest::Method::PUT,
            &format!("/projects/{project_id}/users/{id}/roles/{role_id}"),
            None,
        )
        .await;
        User {
            name: name.into(),
            password,
            id,
        }
    }

    async fn populate(&mut self) {
        let service = self.project(SERVICE_PROJECT).await;
        let vpnaas = self.user(SERVICE_USER, &service, "service").await;
        assert_eq!(vpnaas.password, SERVICE_PASSWORD);
        let neutron = self.user(NEUTRON_USER, &service, "admin").await;
        assert_eq!(neutron.password, NEUTRON_PASSWORD);
        for n in 0..self.projects.len() {
            let name = format!("p{}", n + 1);
            let id = self.project(&name).await;
            self.projects[n] = Project {
                admin: self.user(&format!("{name}-admin"), &id, "admin").await,
                member: self.user(&format!("{name}-member"), &id, "member").await,
                reader: self.user(&format!("{name}-reader"), &id, "reader").await,
                id,
                name,
            };
        }
    }
}

fn empty_project() -> Project {
    let nobody = User {
        name: String::new(),
        password: String::new(),
        id: String::new(),
    };
    Project {
        id: String::new(),
        name: String::new(),
        admin: nobody.clone(),
        member: nobody.clone(),
        reader: nobody,
    }
}

impl Keystone {
    /// Kills it (by pid) and waits for it to end: Keystone down.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        self.stop();
    }
}
