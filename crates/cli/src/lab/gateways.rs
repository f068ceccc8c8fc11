//! The lab's gateway hosts: `vpnaas lab up --agents N` starts N agent processes, each a
//! gateway host of its own (host `<prefix>-gw<N>`, namespaces `<prefix>-gw<N>-…`, state
//! and log in the lab's directory), on the server the CLI talks to. `lab power-off N` is
//! a power cut of one (agent, daemons and namespaces gone at once), `lab power-on N`
//! starts it again, `lab down` stops them all. A process is found by the pid file the lab
//! wrote and signalled only while its command line still names that gateway.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use vpnaas_agent::{DataPlane, command, l3, process};

use super::LabArgs;

/// One gateway host of the lab.
pub struct Gateway {
    host: String,
    namespace_prefix: String,
    dir: PathBuf,
    name: String,
}

/// Where the lab keeps its gateways' pid files, command lines, logs and state.
pub(super) fn lab_dir(lab: &LabArgs) -> PathBuf {
    std::env::temp_dir().join(format!("vpnaas-lab-{}", lab.prefix))
}

impl Gateway {
    /// Gateway host `n` (1-based) of the lab.
    pub fn new(lab: &LabArgs, n: u8) -> Gateway {
        Gateway {
            host: format!("{}-gw{n}", lab.prefix),
            namespace_prefix: format!("{}-gw{n}-", lab.prefix),
            dir: lab_dir(lab),
            name: format!("gw{n}"),
        }
    }

    /// The gateways the lab started (those with a command line on record).
    pub fn all(lab: &LabArgs) -> Vec<Gateway> {
        let Ok(entries) = std::fs::read_dir(lab_dir(lab)) else {
            return vec![];
        };
        let mut numbers: Vec<u8> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("gw")?.strip_suffix(".args")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        numbers.into_iter().map(|n| Gateway::new(lab, n)).collect()
    }

    /// The agent's host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.name))
    }

    /// Starts the agent (first time: with these settings, remembered for `power-on`),
    /// unless it runs.
    pub fn start(
        &self,
        server_url: &str,
        fabric_namespace: &str,
        data_plane: DataPlane,
    ) -> Result<()> {
        let args = vec![
            "agent".to_string(),
            "--server".into(),
            server_url.into(),
            "--host".into(),
            self.host.clone(),
            "--namespace-prefix".into(),
            self.namespace_prefix.clone(),
            "--fabric-namespace".into(),
            fabric_namespace.into(),
            "--state-dir".into(),
            self.dir.join(&self.name).to_string_lossy().into_owned(),
            "--data-plane".into(),
            data_plane.to_string(),
            "--heartbeat-interval".into(),
            "1".into(),
            // The lab's gateway hosts share this machine's loopback.
            "--ha-listen".into(),
            "127.0.0.1:0".into(),
        ];
        std::fs::create_dir_all(&self.dir).context("lab directory")?;
        std::fs::write(self.file("args"), args.join("\n")).context("agent command line")?;
        self.spawn(&args)
    }

    /// Starts the agent again as it was first started.
    pub fn power_on(&self) -> Result<()> {
        let args = std::fs::read_to_string(self.file("args"))
            .with_context(|| format!("no lab gateway {} (lab up --agents)", self.name))?;
        let args: Vec<String> = args.lines().map(String::from).collect();
        self.spawn(&args)
    }

    fn spawn(&self, args: &[String]) -> Result<()> {
        if self.running_pid().is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file("log"))
            .context("agent log")?;
        let child = Command::new(std::env::current_exe().context("own binary")?)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a Ctrl-C in the terminal that ran `lab up` is not its.
            .process_group(0)
            .spawn()
            .context("cannot start the agent")?;
        std::fs::write(self.file("pid"), child.id().to_string()).context("pid file")?;
        Ok(())
    }

    /// The agent's pid, while it runs and still is this gateway's agent.
    fn running_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.file("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == self.host.as_bytes());
        (ours && process::alive(pid)).then_some(pid)
    }

    /// Stops the agent (SIGTERM, then SIGKILL).
    pub async fn stop(&self) {
        if let Some(pid) = self.running_pid() {
            process::terminate(pid).await;
        }
    }

    /// A power cut: the agent is killed, and so is everything in its namespaces, which go.
    pub async fn power_off(&self) -> Result<()> {
        if let Some(pid) = self.running_pid() {
            process::kill(pid)?;
        }
        power_off(&self.namespace_prefix).await
    }

    /// Removes what a powered-off gateway host left, if any: with its agent stopped,
    /// nobody else would.
    pub async fn clear_if_powered_off(&self) -> Result<()> {
        if self.running_pid().is_some() {
            return Ok(());
        }
        power_off(&self.namespace_prefix).await
    }

    /// Stops the agent and removes whatever it left.
    pub async fn remove(&self) -> Result<()> {
        self.stop().await;
        power_off(&self.namespace_prefix).await?;
        for suffix in ["args", "pid"] {
            let _ = std::fs::remove_file(self.file(suffix));
        }
        Ok(())
    }
}

/// What a gateway host's power cut does to its routers: every process in the namespaces
/// whose names start with `namespace_prefix` is killed, and the namespaces are deleted.
pub async fn power_off(namespace_prefix: &str) -> Result<()> {
    for namespace in l3::namespaces_with_prefix(namespace_prefix).await {
        let pids = command::run("ip", &["netns", "pids", &namespace]).await?;
        for pid in pids.split_whitespace().filter_map(|pid| pid.parse().ok()) {
            // Gone already is fine: the namespace is what is being emptied.
            let _ = process::kill(pid);
        }
        l3::remove_namespace(&namespace).await?;
    }
    Ok(())
}
