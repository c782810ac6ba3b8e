//! `strata serve`: the lazy tree over HTTP (pip/uv index, npm registry, static tree, dnf
//! baseurls) and NFSv3, both at once over one store.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::Args;
use strata_lock::SkipReason;
use strata_serve::{HttpOptions, LazyTree};
use strata_store::{Fetcher, Store};
use strata_tree::{Tree, TreeOptions};

use crate::cli::{CacheDirArg, DownloadArgs};
use crate::exit::{CmdResult, input, work};

/// Default HTTP address when neither `--http` nor `--nfs` is given.
const DEFAULT_HTTP: &str = "127.0.0.1:8470";

/// Arguments of `strata serve`.
#[derive(Debug, Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Lockfiles, as for `strata fetch`.
    #[arg(required = true, value_name = "LOCKFILE")]
    pub lockfiles: Vec<PathBuf>,
    /// Serve HTTP on ADDR (HOST:PORT or PORT; port 0 picks a free one) [default:
    /// 127.0.0.1:8470 when --nfs is not given].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Serve NFSv3 (read-only; NFS and MOUNT on the same port) on ADDR (IPv4 HOST:PORT or
    /// PORT).
    #[arg(long, value_name = "ADDR")]
    pub nfs: Option<String>,
    /// URL path prefix of the output tree over HTTP.
    #[arg(long, value_name = "P", default_value = "/tree")]
    pub prefix: String,
    #[command(flatten)]
    pub cache: CacheDirArg,
    /// Where the build sees the tree (e.g. /cachi2/output, where an NFS volume is mounted):
    /// used in .build-config.json and deps/rpm/<arch>/repos.d/strata.repo, which exist only
    /// when this is given.
    #[arg(long, value_name = "PATH")]
    pub for_output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub download: DownloadArgs,
}

const SERVE_HELP: &str = "\
Examples:
  # pip, uv and npm through one server (files download on first request):
  strata serve --http 127.0.0.1:8470 pylock.toml package-lock.json
  pip install --index-url http://127.0.0.1:8470/simple -r requirements.txt
  uv pip install --index-url http://127.0.0.1:8470/simple -r requirements.txt
  npm ci --registry http://127.0.0.1:8470/npm/

  # The output tree over HTTP (Range supported) and NFS at once:
  strata serve --http 8470 --nfs 12049 --for-output-dir /cachi2/output rpms.lock.yaml
  curl -O http://127.0.0.1:8470/tree/deps/rpm/x86_64/baseos/tool-1.0-1.x86_64.rpm
  mount -t nfs -o port=12049,mountport=12049,nfsvers=3,tcp,nolock,ro 127.0.0.1:/ /mnt

  # From a podman machine or a build container, use host.containers.internal as HOST
  # (and --http 0.0.0.0:8470 so the VM can reach it).

Routes: /simple/ (PEP 503 HTML or PEP 691 JSON by Accept), /npm/ (packuments with only the
locked versions, tarballs), <prefix>/ (the same tree as `strata mount`), /rpm/<arch>/<repoid>/
(a dnf baseurl; repodata appears there when the tree has it), /_strata/stats. Anything the
lockfiles do not pin answers 404 with a body saying it is not locked.

npm: `npm ci --registry URL` keeps package-lock.json unchanged. npm swaps the host of a
`resolved` URL for the configured registry's when it is the default public registry
(--replace-registry-host=npmjs, npm's default); for lockfiles resolved against another
registry pass --replace-registry-host=always (or that registry's host name).

Each address is printed on stdout when it is ready (`http http://ADDR/`, `nfs ADDR`).
Stop with Ctrl-C or SIGTERM.

Exit status: 0 stopped by a signal, 1 could not serve (address in use, cache unusable),
2 bad input (lockfile, address, prefix).";

fn parse_addr(s: &str, what: &str) -> Result<SocketAddr, crate::exit::Failure> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        input(anyhow!(
            "--{what} {s}: not an address; give HOST:PORT with an IP (127.0.0.1:8470) or a PORT"
        ))
    })
}

/// Runs `strata serve`.
pub fn run(args: ServeArgs) -> CmdResult {
    let http = match (&args.http, &args.nfs) {
        (Some(a), _) => Some(parse_addr(a, "http")?),
        (None, None) => Some(parse_addr(DEFAULT_HTTP, "http")?),
        (None, Some(_)) => None,
    };
    let nfs = args
        .nfs
        .as_deref()
        .map(|a| parse_addr(a, "nfs"))
        .transpose()?;
    let nfs = match nfs {
        None => None,
        Some(SocketAddr::V4(a)) => Some(a),
        Some(a) => {
            return Err(input(anyhow!(
                "--nfs {a}: the NFS server listens on IPv4 only"
            )));
        }
    };
    for a in http.iter().copied().chain(nfs.map(SocketAddr::V4)) {
        if !a.ip().is_loopback() {
            tracing::warn!(
                "serving on {a}, which is not loopback: anyone who can reach it can read the locked artifacts"
            );
        }
    }
    let options =
        HttpOptions::with_prefix(&args.prefix).map_err(|e| input(anyhow!("--prefix: {e}")))?;

    let outcome = strata_lock::load_all_with_skipped(&args.lockfiles, &args.download.filter())
        .map_err(input)?;
    for s in &outcome.skipped {
        if let SkipReason::Unfetchable(why) | SkipReason::NoFileSelected(why) = &s.reason {
            tracing::warn!("skipped {} ({}): {why}", s.name, s.origin);
        }
    }
    let npm_projects = strata_tree::load_npm_projects(&outcome.artifacts).map_err(input)?;
    let tree_options = TreeOptions {
        for_output_dir: args
            .for_output_dir
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        npm_projects,
        sbom: Default::default(),
    };
    let tree = Tree::build(&outcome.artifacts, &tree_options).map_err(input)?;
    let files = outcome.artifacts.len();

    let store = Store::open(args.cache.resolve()).map_err(work)?;
    let fetch_options = args.download.fetch_options(&args.cache).map_err(input)?;
    let fetcher = Fetcher::new(store, fetch_options).map_err(|e| work(anyhow!(e)))?;
    let lazy = LazyTree::new(tree, outcome.artifacts, fetcher);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .map_err(work)?;
    runtime.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(addr) = http {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("could not listen on {addr} for HTTP"))
                .map_err(work)?;
            let local = listener.local_addr().map_err(work)?;
            announce(&format!("http http://{local}/"));
            eprintln!(
                "strata: serving {files} artifacts over HTTP at http://{local}/ \
                 (pip: --index-url http://{local}/simple, npm: --registry http://{local}/npm/, \
                 tree: http://{local}{}/)",
                options.tree_prefix
            );
            tasks.spawn(strata_serve::serve_http(listener, lazy.clone(), options));
        }
        if let Some(addr) = nfs {
            let (port, serve) = strata_serve::bind_nfs(addr, lazy.clone())
                .await
                .with_context(|| format!("could not listen on {addr} for NFS"))
                .map_err(work)?;
            let local = SocketAddr::new(IpAddr::V4(*addr.ip()), port);
            announce(&format!("nfs {local}"));
            eprintln!(
                "strata: serving {files} artifacts over NFSv3 at {local} \
                 (nfs://{}/?port={port}&mountport={port}&version=3)",
                addr.ip()
            );
            tasks.spawn(serve);
        }
        tokio::select! {
            _ = wait_for_signal() => {}
            Some(done) = tasks.join_next() => {
                let result = done.context("a server task panicked").map_err(work)?;
                result.context("serving failed").map_err(work)?;
            }
        }
        let s = lazy.stats();
        eprintln!(
            "strata: stopped: {} opens ({} from cache, {} downloaded ({}), {} shared, {} failed), {} refused as not locked",
            s.opens,
            s.cache,
            s.downloaded,
            indicatif::HumanBytes(s.downloaded_bytes),
            s.shared,
            s.failed,
            s.not_locked
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints a ready line on stdout and flushes it (scripts wait for it).
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
