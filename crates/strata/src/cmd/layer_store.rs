//! `strata layer-store`: registry layers served lazily to podman and buildah.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use strata_layerstore::{LayerStore, MountOptions, MountedStore, STATS_FILE, StoreOptions};
use strata_store::Store;

use crate::cli::CacheDirArg;
use crate::cmd::mount::{Signals, prepare_mountpoint};
use crate::exit::{CmdResult, work};

/// Arguments of `strata layer-store`.
#[derive(Debug, Args)]
#[command(after_long_help = EXAMPLES)]
pub struct LayerStoreArgs {
    /// Where to mount (created if missing); name it in storage.conf as `MOUNTPOINT:ref`.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    #[command(flatten)]
    pub cache: CacheDirArg,
    /// A registry (HOST[:PORT]) to reach over plain HTTP; loopback registries always are.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// FUSE worker threads; each waits on one fetch at a time.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub threads: usize,
}

/// `strata layer-store --help` examples.
pub const EXAMPLES: &str = "\
containers-storage (podman, buildah, CRI-O) takes layers from an additional layer store
when one is configured: pulling an image then copies no layer data, and a container or a
build FROM it reads only the files it opens, fetched on first open (one HTTP range request
per file, verified against the layer's table of contents) into strata's shared cache.

Layers must be zstd:chunked, which podman and buildah write with
`push --format oci --compression-format zstd:chunked`; other layers are pulled as usual.

Examples:
  # Serve layers at /var/lib/strata/layers (stays in the foreground; SIGTERM unmounts):
  strata layer-store /var/lib/strata/layers &

  # Point containers-storage at it (storage.conf, or CONTAINERS_STORAGE_CONF=FILE):
  [storage]
  driver = \"overlay\"
  graphroot = \"/var/lib/containers/storage\"
  runroot = \"/run/containers/storage\"
  [storage.options]
  additionallayerstores = [\"/var/lib/strata/layers:ref\"]

  # Publish images lazily pullable, then build FROM them anywhere:
  buildah push --format oci --compression-format zstd:chunked app:tooling \\
      docker://registry.example/app:tooling
  buildah bud --from registry.example/app:tooling .

  # What the store has done so far (layers served, files and bytes fetched), as JSON:
  cat /var/lib/strata/layers/.strata-layer-store.json

Images using these layers need the store mounted while they exist: keep it running, as a
service, for as long as the images are in containers-storage.

Exit status: 0 unmounted cleanly, 1 the mount failed, 2 bad input.";

/// Runs `strata layer-store`.
pub fn run(args: LayerStoreArgs) -> CmdResult {
    let started = Instant::now();
    let mountpoint = prepare_mountpoint(&args.mountpoint)?;
    let store = Store::open(args.cache.resolve()).map_err(work)?;
    let layers = LayerStore::new(
        store,
        StoreOptions {
            insecure_registries: args.insecure_registry.clone(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the signal runtime")
        .map_err(work)?;
    let signals = Signals::install(&runtime, true)
        .context("could not install the signal handlers")
        .map_err(work)?;
    let options = MountOptions {
        threads: args.threads,
        // SAFETY: geteuid has no preconditions.
        allow_other: unsafe { libc::geteuid() } == 0,
    };
    let mounted = MountedStore::mount(layers, &mountpoint, &options)
        .with_context(|| format!("could not mount at {}", mountpoint.display()))
        .map_err(work)?;
    eprintln!(
        "strata: layer store at {} (pid {}, {} ms); storage.conf: additionallayerstores = [\"{}:ref\"]",
        mountpoint.display(),
        std::process::id(),
        started.elapsed().as_millis(),
        mountpoint.display(),
    );
    let unmount_at = mountpoint.clone();
    std::thread::spawn(move || {
        runtime.block_on(signals.first());
        tracing::info!("signal received, unmounting");
        if let Err(e) = strata_lazyfs::mounts::unmount(&unmount_at) {
            eprintln!("strata: could not unmount: {e}");
        }
    });
    let summary = mounted
        .run()
        .with_context(|| format!("serving {} failed", mountpoint.display()))
        .map_err(work)?;
    eprintln!(
        "strata: unmounted {}: {} layers served lazily ({} of files), {} refused; {} files fetched ({} compressed), {} from the cache, {} whole blobs, {} failed (see {STATS_FILE})",
        mountpoint.display(),
        summary.layers_served,
        indicatif::HumanBytes(summary.layer_bytes),
        summary.layers_refused,
        summary.files_fetched,
        indicatif::HumanBytes(summary.bytes_fetched),
        summary.cache_hits,
        summary.blobs_fetched,
        summary.failures,
    );
    Ok(ExitCode::SUCCESS)
}
