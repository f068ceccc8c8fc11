//! A private MariaDB for one Neutron lab: Debian's `mariadbd` on its own datadir, unix
//! socket and loopback port, in its own process group (killed on drop). The datadir
//! with Neutron's schema (made by the real `neutron-db-manage upgrade heads`, ~1 min) is
//! a template made once per machine under the target directory (under a file lock);
//! each lab's MariaDB starts on a copy of it, in a second or two.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::conf;
use crate::process::Group;

/// Debian's MariaDB server.
pub const MARIADBD: &str = "/usr/sbin/mariadbd";
/// The template's version: bump when the schema's making or `conf::mariadb` change.
const TEMPLATE: u32 = 1;

/// A running MariaDB of this test's.
pub struct MariaDb {
    group: Group,
    /// Its loopback TCP port.
    pub port: u16,
    dir: PathBuf,
}

impl MariaDb {
    /// Starts one on a copy of the template, in `dir`.
    pub fn start(dir: &Path) -> MariaDb {
        let template = template();
        crate::copy_tree(&template.join("data"), &dir.join("data"));
        MariaDb::serve(dir)
    }

    /// Serves `dir/data` on a free port and waits until it accepts connections.
    fn serve(dir: &Path) -> MariaDb {
        let port = crate::free_port();
        let cnf = dir.join("my.cnf");
        std::fs::write(&cnf, conf::mariadb(dir, port, crate::is_root())).expect("my.cnf");
        let mut command = Command::new(MARIADBD);
        command.arg(format!("--defaults-file={}", cnf.display()));
        let group = Group::spawn("mariadbd", command, &dir.join("mariadbd.out"));
        let mut db = MariaDb {
            group,
            port,
            dir: dir.to_path_buf(),
        };
        db.wait_until_up();
        db
    }

    fn wait_until_up(&mut self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.group.exited() {
                panic!("mariadbd exited ({status}): {}", self.error_log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd does not listen on {}: {}",
                self.port,
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mariadb.err")).unwrap_or_default()
    }

    /// Runs `sql` as MariaDB's root over its unix socket.
    fn execute(&self, sql: &str) {
        let output = Command::new("mariadb")
            .arg(format!(
                "--defaults-file={}",
                self.dir.join("my.cnf").display()
            ))
            .args(["-uroot", "-e", sql])
            .output()
            .expect("the mariadb client (scripts/setup.sh installs mariadb-server)");
        assert!(
            output.status.success(),
            "mariadb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The template's datadir, made if missing: an empty MariaDB, Neutron's database and
/// user, the schema of neutron and neutron-vpnaas by `neutron-db-manage upgrade heads`,
/// then a clean shutdown so that copies of the files are consistent.
fn template() -> PathBuf {
    let root = crate::target_tmp();
    let dir = root.join(format!("neutron-template-{}-{TEMPLATE}", super::PIN));
    let lock = std::fs::File::create(root.join(format!("neutron-template-{}.lock", super::PIN)))
        .expect("template lock file");
    lock.lock().expect("lock the template");
    if dir.join("done").exists() {
        return dir;
    }
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("template dir");
    install_db(&dir);
    let db = MariaDb::serve(&dir);
    db.execute(&conf::grant());
    upgrade_schema(&dir, db.port);
    db.group.terminate();
    std::fs::write(dir.join("done"), "").expect("mark the template");
    eprintln!("neutron database template made in {:?}", started.elapsed());
    dir
}

fn install_db(dir: &Path) {
    let cnf = dir.join("my.cnf");
    std::fs::write(&cnf, conf::mariadb(dir, 0, crate::is_root())).expect("my.cnf");
    let output = Command::new("mariadb-install-db")
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .output()
        .expect("mariadb-install-db (scripts/setup.sh installs mariadb-server)");
    assert!(
        output.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn upgrade_schema(dir: &Path, port: u16) {
    let db_conf = dir.join("database.conf");
    std::fs::write(&db_conf, conf::database(port)).expect("database.conf");
    let output = Command::new(super::venv().join("bin/neutron-db-manage"))
        .arg("--config-file")
        .arg(&db_conf)
        .args(["upgrade", "heads"])
        .output()
        .expect("neutron-db-manage (scripts/setup.sh installs .venv-neutron)");
    assert!(
        output.status.success(),
        "neutron-db-manage upgrade heads: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
