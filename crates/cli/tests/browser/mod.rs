//! A real browser for the dashboard's tests: Debian's Chromium, headless, driven over
//! WebDriver by a chromedriver of the test's own on a free loopback port. Only the
//! processes this harness started (chromedriver and the browsers it spawned) are killed,
//! by pid, even when a test fails. Screenshots go under the target directory (out of
//! git). Without root or without chromium the test is skipped, saying why; under CI
//! (`CI` set) that is a failure instead, so CI cannot pass by skipping.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Why this machine cannot run the browser tests, if it cannot.
fn missing() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Some("not root (the lab needs namespaces and charon)".into());
    }
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|p| !std::path::Path::new(p).exists())
        .map(|p| format!("{p} is missing (scripts/setup.sh installs chromium and chromium-driver)"))
}

/// Whether the browser tests can run here; prints why not (and fails under CI).
pub fn available() -> bool {
    match missing() {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => panic!("browser test cannot run: {why}"),
        Some(why) => {
            eprintln!("SKIPPED: browser test: {why}");
            false
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,1000", format!("--user-data-dir={}", profile.path().display())]}});
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::native()
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if started.elapsed() < Duration::from_secs(30) => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no WebDriver session after 30 s: {error}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// Waits until the script `condition` (a body returning a value) is truthy; returns it.
    pub async fn until(&self, what: &str, condition: &str, within: Duration) -> Value {
        match self.try_until(condition, within).await {
            Ok(value) => value,
            Err(last) => {
                let shot = self.screenshot("timeout").await;
                panic!("{what}: not within {within:?} (last {last}; screenshot {shot})");
            }
        }
    }

    /// Waits until the script `condition` is truthy: its value, or the last one when
    /// `within` passed first.
    pub async fn try_until(&self, condition: &str, within: Duration) -> Result<Value, Value> {
        let started = Instant::now();
        loop {
            let value = self
                .client
                .execute(condition, vec![])
                .await
                .unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if started.elapsed() > within {
                return Err(value);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into the input `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.on(css, |e| async move {
            e.clear().await?;
            e.send_keys(text).await
        })
        .await;
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.on(css, |e| async move { e.select_by_value(value).await })
            .await;
    }

    pub async fn click(&self, css: &str) {
        self.on(css, |e| async move { e.click().await }).await;
    }

    /// Does `act` on the element `css`, finding it again when a live update replaced it
    /// in between (a stale element).
    async fn on<F, Fut>(&self, css: &str, act: F)
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let mut tries = 0;
        loop {
            let element = self.client.find(Locator::Css(css)).await;
            let result = match element {
                Ok(element) => act(element).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => return,
                Err(error) if tries < 20 && is_stale(&error) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("{css}: {error}"),
            }
        }
    }

    /// The text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "var e = document.querySelector({}); return e ? e.textContent : '';",
            json!(css)
        );
        self.client
            .execute(&script, vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    pub async fn count(&self, css: &str) -> u64 {
        let script = format!("return document.querySelectorAll({}).length;", json!(css));
        self.client
            .execute(&script, vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }

    /// Saves a PNG of the page; returns its path.
    pub async fn screenshot(&self, name: &str) -> String {
        let dir = screenshots();
        let path = dir.join(format!("{name}.png"));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(&path, png);
        }
        path.display().to_string()
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill();
    }

    fn kill(&mut self) {
        let pid = self.driver.id();
        for child in descendants(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &child.to_string()])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_stale(error: &fantoccini::error::CmdError) -> bool {
    matches!(error, fantoccini::error::CmdError::Standard(e)
        if e.error == fantoccini::error::ErrorStatus::StaleElementReference)
}

/// Where screenshots go: under the target directory, out of git.
pub fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

/// Every process below `pid` (chromedriver's browsers and their helpers).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let parent = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((child, parent))
        })
        .collect();
    let mut found = vec![];
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, p)| *p == parent) {
            found.push(*child);
            frontier.push(*child);
        }
    }
    found
}
