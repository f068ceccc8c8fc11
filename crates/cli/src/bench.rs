//! `vpnaas bench api`: drives a running server over HTTP and prints latency percentiles
//! and throughput for create, show, list (of a large collection), update and delete of
//! IKE policies, and for the in-use guards of a VPN site, optionally after filling other
//! projects with background objects. Latency runs to the last byte of the answer; list
//! bodies are not decoded by the benchmark client, so its figure is the server's. It
//! deletes what it times; background objects stay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use vpnaas_client::{Client, Method};
use vpnaas_model::Kind;

use crate::bench_fixture::{self, VpnSite};

/// Flags of `vpnaas bench api`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Objects created (and deleted); also the size of the listed collection.
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Show requests.
    #[arg(long, default_value_t = 20000)]
    shows: usize,
    /// List requests (each returns every object of the benchmark's project).
    #[arg(long, default_value_t = 200)]
    lists: usize,
    /// Requests per guard (each refused because its object is in use), one at a time.
    #[arg(long, default_value_t = 500)]
    guard_requests: usize,
    /// Updates of one IKE policy by `--update-clients` clients at once.
    #[arg(long, default_value_t = 2000)]
    updates: usize,
    /// Clients updating the same IKE policy at once.
    #[arg(long, default_value_t = 16)]
    update_clients: usize,
    /// Objects created first in other projects (spread over `--background-projects`,
    /// each a VPN site then connections, policies and endpoint groups) and left in place:
    /// the figures are then those of a full database.
    #[arg(long, default_value_t = 0)]
    background_objects: usize,
    /// Projects the background objects are spread over.
    #[arg(long, default_value_t = 100)]
    background_projects: usize,
}

struct Stats {
    name: String,
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    fn line(&self) -> String {
        format!(
            "{:<24} {:>7} {:>10.3} {:>10.3} {:>10.0}",
            self.name,
            self.latencies.len(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.latencies.len() as f64 / self.wall.as_secs_f64()
        )
    }
}

/// Runs `count` calls of `call(i)` with `concurrency` in flight; returns their latencies.
async fn drive<F, Fut>(
    name: impl Into<String>,
    count: usize,
    concurrency: usize,
    call: F,
) -> Result<Stats>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (call, next) = (call.clone(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                call(i).await?;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(count);
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    Ok(Stats {
        name: name.into(),
        latencies,
        wall: started.elapsed(),
    })
}

/// Creates the background objects: `--background-objects` spread over
/// `--background-projects` projects, `--concurrency` projects filled at once.
async fn seed(admin: &Client, external: &str, run_id: &str, args: &BenchArgs) -> Result<Stats> {
    let projects = args.background_projects.max(1);
    let (total, external, run_id) = (
        args.background_objects,
        external.to_string(),
        run_id.to_string(),
    );
    let admin = admin.clone();
    drive("seed project", projects, args.concurrency, move |k| {
        let client = admin.as_project(&format!("bench-{run_id}-bg-{k}"), "member");
        let count = total / projects + usize::from(k < total % projects);
        let external = external.clone();
        async move { bench_fixture::background_project(&client, &external, count).await }
    })
    .await
}

/// One request that a guard refuses: what it is, and the status expected.
struct Refused {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
}

fn refused(site: &VpnSite) -> Vec<Refused> {
    let change = |kind: Kind| Some(json!({ kind.singular(): {"pfs": "group14"} }));
    let at = |kind: Kind, id: &str| format!("/v2.0/{}/{id}", kind.path());
    let interface = format!("/v2.0/routers/{}/remove_router_interface", site.router);
    let guard = |name, method, path, body, status| Refused {
        name,
        method,
        path,
        body,
        status,
    };
    vec![
        guard(
            "PUT ikepolicy in use",
            Method::PUT,
            at(Kind::IkePolicy, &site.ike),
            change(Kind::IkePolicy),
            409,
        ),
        guard(
            "DELETE ikepolicy in use",
            Method::DELETE,
            at(Kind::IkePolicy, &site.ike),
            None,
            409,
        ),
        guard(
            "PUT ipsecpolicy in use",
            Method::PUT,
            at(Kind::IpsecPolicy, &site.ipsec),
            change(Kind::IpsecPolicy),
            409,
        ),
        guard(
            "DELETE ipsecpolicy in use",
            Method::DELETE,
            at(Kind::IpsecPolicy, &site.ipsec),
            None,
            409,
        ),
        guard(
            "DELETE endpoint group",
            Method::DELETE,
            at(Kind::EndpointGroup, &site.peer_group),
            None,
            400,
        ),
        guard(
            "DELETE vpnservice",
            Method::DELETE,
            at(Kind::VpnService, &site.service),
            None,
            409,
        ),
        guard(
            "DELETE router",
            Method::DELETE,
            at(Kind::Router, &site.router),
            None,
            409,
        ),
        guard(
            "DELETE subnet",
            Method::DELETE,
            at(Kind::Subnet, &site.subnet),
            None,
            409,
        ),
        guard(
            "remove interface",
            Method::PUT,
            interface,
            Some(json!({"subnet_id": site.subnet})),
            409,
        ),
    ]
}

/// Untimed requests before each guard's timed ones: the first requests after the list
/// phase (which leaves large buffers to free) are slower for reasons of their own.
const GUARD_WARM_UP: usize = 50;

/// Times each guard of `site`, one request at a time; every answer must be the refusal.
async fn guards(client: &Client, site: &VpnSite, requests: usize) -> Result<Vec<Stats>> {
    let mut all = Vec::new();
    for guard in refused(site) {
        let guard = Arc::new(guard);
        for _ in 0..GUARD_WARM_UP {
            try_guard(client, &guard).await?;
        }
        let client = client.clone();
        let stats = drive(guard.name, requests, 1, move |_| {
            let (client, guard) = (client.clone(), guard.clone());
            async move { try_guard(&client, &guard).await }
        })
        .await?;
        all.push(stats);
    }
    Ok(all)
}

async fn try_guard(client: &Client, guard: &Refused) -> Result<()> {
    let (status, body) = client
        .raw(guard.method.clone(), &guard.path, guard.body.as_ref())
        .await?;
    anyhow::ensure!(
        status.as_u16() == guard.status,
        "{}: expected {}, got {status} {body}",
        guard.name,
        guard.status
    );
    Ok(())
}

/// Times `count` updates of one unused IKE policy by `clients` clients at once (each
/// update changes the PFS group, which runs the in-use guard).
async fn contended_updates(client: &Client, count: usize, clients: usize) -> Result<Stats> {
    let policy = client.create(Kind::IkePolicy, json!({})).await?;
    let id = policy["id"].as_str().context("id")?.to_string();
    let stats = {
        let (client, id) = (client.clone(), id.clone());
        drive(
            format!("PUT one ikepolicy x{clients}"),
            count,
            clients,
            move |i| {
                let (client, id) = (client.clone(), id.clone());
                let pfs = if i % 2 == 0 { "group14" } else { "group5" };
                async move {
                    client
                        .update(Kind::IkePolicy, &id, json!({"pfs": pfs}))
                        .await
                        .map(|_| ())
                        .map_err(Into::into)
                }
            },
        )
        .await?
    };
    client.delete(Kind::IkePolicy, &id).await?;
    Ok(stats)
}

/// Runs the benchmark against `admin` (an administrator's client: it makes the external
/// network) and returns the printed report. The timed requests are a member's of a
/// project of their own.
pub async fn run(admin: &Client, args: &BenchArgs) -> Result<String> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let client = admin.as_project(&format!("bench-{run_id}"), "member");
    let external = bench_fixture::external_network(admin, &run_id).await?;
    let seeded = if args.background_objects > 0 {
        Some(seed(admin, &external, &run_id, args).await?)
    } else {
        None
    };
    let site = bench_fixture::site(&client, &external).await?;
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); args.objects]));
    let create = {
        let (client, ids, run_id) = (client.clone(), ids.clone(), run_id.clone());
        drive("create", args.objects, args.concurrency, move |i| {
            let (client, ids, name) = (client.clone(), ids.clone(), format!("bench-{run_id}-{i}"));
            async move {
                let created = client
                    .create(Kind::IkePolicy, json!({"name": name}))
                    .await?;
                let id = created["id"].as_str().context("id")?.to_string();
                ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i] = id;
                Ok(())
            }
        })
        .await?
    };
    let ids: Arc<Vec<String>> =
        Arc::new(ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone());
    let show = {
        let (client, ids) = (client.clone(), ids.clone());
        drive("show", args.shows, args.concurrency, move |i| {
            let (client, id) = (client.clone(), ids[i % ids.len()].clone());
            async move {
                client
                    .show(Kind::IkePolicy, &id)
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            }
        })
        .await?
    };
    let total = client.list(Kind::IkePolicy, &[]).await?.len();
    let list = {
        let client = client.clone();
        drive("list", args.lists, 1, move |_| {
            let client = client.clone();
            async move {
                let body = client
                    .get_text(&format!("/v2.0/{}", Kind::IkePolicy.path()))
                    .await?;
                anyhow::ensure!(body.len() > 2, "empty list");
                Ok(())
            }
        })
        .await?
    };
    let guards = guards(&client, &site, args.guard_requests).await?;
    let updates = contended_updates(&client, args.updates, args.update_clients).await?;
    let delete = {
        let (client, ids) = (client.clone(), ids.clone());
        drive("delete", ids.len(), args.concurrency, move |i| {
            let (client, id) = (client.clone(), ids[i].clone());
            async move {
                client
                    .delete(Kind::IkePolicy, &id)
                    .await
                    .map_err(Into::into)
            }
        })
        .await?
    };
    bench_fixture::delete_site(&client, &site).await?;
    if seeded.is_none() {
        admin.delete(Kind::Network, &external).await?;
    }
    let mut report = format!(
        "vpnaas bench api: {} (concurrency {}, list of {total} objects at concurrency 1, guards at concurrency 1)\n",
        client.base_url(),
        args.concurrency,
    );
    if let Some(seeded) = &seeded {
        report.push_str(&format!(
            "background: {} objects in {} projects, created in {:.1} s (left in place)\n",
            args.background_objects,
            args.background_projects,
            seeded.wall.as_secs_f64()
        ));
    }
    report.push_str(&format!(
        "{:<24} {:>7} {:>10} {:>10} {:>10}\n",
        "op", "n", "p50 ms", "p99 ms", "req/s"
    ));
    for stats in [create, show, list]
        .into_iter()
        .chain(guards)
        .chain([updates, delete])
    {
        report.push_str(&stats.line());
        report.push('\n');
    }
    Ok(report)
}

/// Flags of `vpnaas bench tunnel`.
#[derive(Debug, clap::Args)]
pub struct TunnelArgs {
    /// Prefix of the lab (`vpnaas lab up --prefix`), whose sites 1 and 2 are used.
    #[arg(long, env = "VPNAAS_LAB_PREFIX", default_value = "vlab")]
    prefix: String,
    /// Number of measured bring-ups.
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

/// A lab site with a VPN service the benchmark made on its router.
pub(crate) struct Site {
    pub service: String,
    pub gateway: String,
    pub cidr: String,
    pub router: String,
}

/// Site `n` of the lab `prefix`, with a new VPN service.
pub(crate) async fn lab_site(client: &Client, prefix: &str, n: u8) -> Result<Site> {
    let router = client.find(Kind::Router, &format!("{prefix}-r{n}")).await?;
    let subnet = client
        .find(Kind::Subnet, &format!("{prefix}-site{n}-v4"))
        .await?;
    let service = client.create(Kind::VpnService, json!({"name": format!("{prefix}-bench-{n}"), "router_id": router["id"], "subnet_id": subnet["id"]})).await?;
    Ok(Site {
        router: router["id"].as_str().context("id")?.to_string(),
        service: service["id"].as_str().context("id")?.to_string(),
        gateway: router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
            .as_str()
            .context("gateway")?
            .to_string(),
        cidr: subnet["cidr"].as_str().context("cidr")?.to_string(),
    })
}

/// Measures, on a running all-in-one with a 2-site lab, the time from the POST of the
/// second side of a connection pair to `ACTIVE` in GET; deletes what it created.
pub async fn tunnel(client: &Client, args: &TunnelArgs) -> Result<String> {
    let ike = client
        .create(
            Kind::IkePolicy,
            json!({"name": "bench-ike", "ike_version": "v2"}),
        )
        .await?;
    let ipsec = client
        .create(Kind::IpsecPolicy, json!({"name": "bench-ipsec"}))
        .await?;
    let sites = [
        lab_site(client, &args.prefix, 1).await?,
        lab_site(client, &args.prefix, 2).await?,
    ];
    let connection = |from: &Site, to: &Site| {
        json!({"vpnservice_id": from.service, "ikepolicy_id": ike["id"], "ipsecpolicy_id": ipsec["id"],
               "peer_address": to.gateway, "peer_id": to.gateway, "psk": "bench-secret", "peer_cidrs": [to.cidr]})
    };
    let mut samples = Vec::new();
    for _ in 0..args.runs {
        let first = client
            .create(Kind::SiteConnection, connection(&sites[0], &sites[1]))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let second = client
            .create(Kind::SiteConnection, connection(&sites[1], &sites[0]))
            .await?;
        let second_id = second["id"].as_str().context("id")?.to_string();
        loop {
            if client.show(Kind::SiteConnection, &second_id).await?["status"] == "ACTIVE" {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "no ACTIVE within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
        client.delete(Kind::SiteConnection, &second_id).await?;
        client
            .delete(Kind::SiteConnection, first["id"].as_str().context("id")?)
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for site in &sites {
        client.delete(Kind::VpnService, &site.service).await?;
    }
    client
        .delete(Kind::IkePolicy, ike["id"].as_str().context("id")?)
        .await?;
    client
        .delete(Kind::IpsecPolicy, ipsec["id"].as_str().context("id")?)
        .await?;
    samples.sort();
    let ms = |d: &Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    Ok(format!(
        "vpnaas bench tunnel: POST of the second side -> ACTIVE in GET, {} runs\nmedian {} ms, min {} ms, max {} ms\nall: {}",
        samples.len(),
        ms(&samples[samples.len() / 2]),
        ms(&samples[0]),
        ms(&samples[samples.len() - 1]),
        samples.iter().map(ms).collect::<Vec<_>>().join(" ")
    ))
}
