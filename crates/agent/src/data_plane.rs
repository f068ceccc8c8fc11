//! Which data plane carries ESP on this host: the kernel's (XFRM) or strongSwan's userspace
//! ESP (kernel-libipsec over a TUN device). Some kernels have XFRM but no ESP (no
//! `CONFIG_INET_ESP`): an IKE daemon on kernel ESP there builds IKE SAs whose child SAs all
//! fail, and the peer only hears NO_PROPOSAL_CHOSEN. So the agent asks the kernel once, at
//! start, whether it holds an ESP SA; `auto` follows the answer, and the drivers that put
//! SAs in the kernel use it to explain their failures.

use std::process::Stdio;

use crate::config::DataPlane;

/// Where ESP runs: what the configured [`DataPlane`] resolved to. The drivers only ever
/// see this (there is no `auto` past the agent's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esp {
    /// Kernel XFRM, through charon's kernel-netlink.
    Kernel,
    /// Inside charon (kernel-libipsec), plaintext over its TUN device.
    Userspace,
}

impl Esp {
    /// `kernel` or `userspace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Esp::Kernel => "kernel",
            Esp::Userspace => "userspace",
        }
    }
}

/// What the kernel said when asked to hold an ESP SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEsp {
    /// It took the SA: kernel ESP works.
    Accepted,
    /// It refused, with its message (e.g. "Requested type not found.").
    Refused(String),
    /// The question could not be asked (e.g. not root), with why.
    Unknown(String),
}

impl KernelEsp {
    /// The kernel's message when it refused.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            KernelEsp::Refused(message) => Some(message),
            KernelEsp::Accepted | KernelEsp::Unknown(_) => None,
        }
    }
}

/// The data plane in use and what the kernel answered at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// As configured.
    pub configured: DataPlane,
    /// What it resolved to.
    pub esp: Esp,
    /// The kernel's answer.
    pub kernel: KernelEsp,
}

impl Chosen {
    /// Resolves `configured` with the kernel's answer: `auto` takes kernel ESP only when
    /// the kernel held the SA (userspace ESP works on every kernel with TUN, so it is also
    /// the choice when the kernel could not be asked).
    pub fn new(configured: DataPlane, kernel: KernelEsp) -> Chosen {
        let esp = match (configured, &kernel) {
            (DataPlane::Kernel, _) | (DataPlane::Auto, KernelEsp::Accepted) => Esp::Kernel,
            (DataPlane::Userspace, _) | (DataPlane::Auto, _) => Esp::Userspace,
        };
        Chosen {
            configured,
            esp,
            kernel,
        }
    }

    /// The kernel's refusal of an ESP SA, when ESP runs in the kernel: child SAs will fail
    /// (`KERNEL_REFUSED`).
    pub fn kernel_esp_refused(&self) -> Option<&str> {
        (self.esp == Esp::Kernel)
            .then(|| self.kernel.refusal())
            .flatten()
    }
}

impl std::fmt::Display for Chosen {
    /// `userspace (kernel refused an ESP SA: Requested type not found.)` and the like.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match (self.configured, &self.kernel) {
            (DataPlane::Auto, KernelEsp::Accepted) => "the kernel accepted an ESP SA".into(),
            (DataPlane::Auto, KernelEsp::Refused(m)) => format!("kernel refused an ESP SA: {m}"),
            (DataPlane::Auto, KernelEsp::Unknown(m)) => {
                format!("cannot ask the kernel for an ESP SA: {m}")
            }
            (DataPlane::Kernel, KernelEsp::Refused(m)) => format!(
                "configured, but the kernel refused an ESP SA ({m}): child SAs will fail with KERNEL_REFUSED"
            ),
            (DataPlane::Kernel | DataPlane::Userspace, _) => "configured".into(),
        };
        write!(f, "{} ({why})", self.esp.as_str())
    }
}

/// `unshare` arguments that add an ESP SA (AES-CBC with HMAC-SHA-256, the API's default
/// algorithms) in a network namespace of its own: the namespace, and the SA with it, go
/// when `ip` exits, so the host's state is never touched and nothing is left to clean up.
const SCRATCH_SA: &[&str] = &[
    "--net",
    "--",
    "ip",
    "xfrm",
    "state",
    "add",
    "src",
    "192.0.2.1",
    "dst",
    "192.0.2.2",
    "proto",
    "esp",
    "spi",
    "0x100",
    "mode",
    "tunnel",
    "enc",
    "cbc(aes)",
    "0x000102030405060708090a0b0c0d0e0f",
    "auth",
    "hmac(sha256)",
    "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
];

/// Asks the kernel to hold an ESP SA in a scratch network namespace.
pub async fn probe() -> KernelEsp {
    let output = tokio::process::Command::new("unshare")
        .args(SCRATCH_SA)
        .stdin(Stdio::null())
        .output()
        .await;
    match output {
        Err(error) => KernelEsp::Unknown(format!("unshare: {error}")),
        Ok(output) if output.status.success() => KernelEsp::Accepted,
        Ok(output) => verdict(&String::from_utf8_lossy(&output.stderr)),
    }
}

/// The kernel's refusal from `ip`'s error output, unless `unshare` itself failed (then
/// the kernel was never asked).
fn verdict(stderr: &str) -> KernelEsp {
    let message = stderr.trim();
    if message.starts_with("unshare:") {
        KernelEsp::Unknown(message.to_string())
    } else {
        KernelEsp::Refused(message.trim_start_matches("Error: ").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::is_root;

    #[test]
    fn auto_follows_the_kernel_and_the_log_line_says_why() {
        let refused = || KernelEsp::Refused("Requested type not found.".into());
        let cases = [
            (
                DataPlane::Auto,
                refused(),
                Esp::Userspace,
                "userspace (kernel refused an ESP SA: Requested type not found.)",
            ),
            (
                DataPlane::Auto,
                KernelEsp::Accepted,
                Esp::Kernel,
                "kernel (the kernel accepted an ESP SA)",
            ),
            (
                DataPlane::Auto,
                KernelEsp::Unknown("unshare: unshare failed: Operation not permitted".into()),
                Esp::Userspace,
                "userspace (cannot ask the kernel for an ESP SA: unshare: unshare failed: Operation not permitted)",
            ),
            (
                DataPlane::Kernel,
                refused(),
                Esp::Kernel,
                "kernel (configured, but the kernel refused an ESP SA (Requested type not found.): child SAs will fail with KERNEL_REFUSED)",
            ),
            (
                DataPlane::Userspace,
                KernelEsp::Accepted,
                Esp::Userspace,
                "userspace (configured)",
            ),
        ];
        for (configured, kernel, esp, line) in cases {
            let chosen = Chosen::new(configured, kernel);
            assert_eq!((chosen.esp, chosen.to_string().as_str()), (esp, line));
        }
    }

    #[test]
    fn only_kernel_esp_is_refused_by_a_refusing_kernel() {
        let refused = || KernelEsp::Refused("Requested type not found.".into());
        assert_eq!(
            Chosen::new(DataPlane::Kernel, refused()).kernel_esp_refused(),
            Some("Requested type not found.")
        );
        assert_eq!(
            Chosen::new(DataPlane::Auto, refused()).kernel_esp_refused(),
            None
        );
        assert_eq!(
            Chosen::new(DataPlane::Kernel, KernelEsp::Accepted).kernel_esp_refused(),
            None
        );
    }

    #[test]
    fn ips_error_is_the_kernels_refusal_and_unshares_is_no_answer() {
        assert_eq!(
            verdict("Error: Requested type not found.\n"),
            KernelEsp::Refused("Requested type not found.".into())
        );
        assert_eq!(
            verdict("unshare: unshare failed: Operation not permitted\n"),
            KernelEsp::Unknown("unshare: unshare failed: Operation not permitted".into())
        );
    }

    /// `CONFIG_INET_ESP` of the running kernel, when its configuration can be read.
    fn kernel_has_esp() -> Option<bool> {
        let config = std::process::Command::new("zcat")
            .arg("/proc/config.gz")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())?;
        config.lines().find_map(|line| match line {
            "CONFIG_INET_ESP=y" => Some(true),
            "# CONFIG_INET_ESP is not set" => Some(false),
            _ => None,
        })
    }

    fn host_xfrm_states() -> String {
        let out = std::process::Command::new("ip")
            .args(["xfrm", "state"])
            .output()
            .expect("ip xfrm state");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Needs root (a network namespace); fails without it, saying so.
    #[tokio::test]
    async fn the_probe_asks_the_kernel_and_leaves_the_host_alone() {
        assert!(
            is_root(),
            "this test needs root (a scratch network namespace); run it as root"
        );
        let before = host_xfrm_states();
        let answer = probe().await;
        assert_eq!(before, host_xfrm_states(), "the host's SAs are untouched");
        match kernel_has_esp() {
            Some(true) => assert_eq!(answer, KernelEsp::Accepted),
            Some(false) => assert!(
                matches!(&answer, KernelEsp::Refused(m) if !m.is_empty()),
                "a kernel without ESP refuses, with its message: {answer:?}"
            ),
            None => assert!(
                !matches!(answer, KernelEsp::Unknown(_)),
                "as root the kernel answers: {answer:?}"
            ),
        }
    }
}
