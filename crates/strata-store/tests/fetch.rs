//! The downloader and the store against a real loopback upstream with fault injection.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::Digest as _;
use strata_lock::{Algorithm, Artifact, Details, Digest, Ecosystem, Origin};
use strata_store::{
    Failure, FetchOptions, Fetcher, NoProgress, Placement, Source, Store, StoreError,
};
use strata_upstream::{Fault, Upstream, UpstreamBuilder};

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_bytes(Algorithm::Sha256, &sha2::Sha256::digest(bytes)).unwrap()
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[0] ^ seed)
        .collect()
}

fn artifact(name: &str, bytes: &[u8], urls: Vec<String>) -> Artifact {
    Artifact {
        ecosystem: Ecosystem::Generic,
        name: name.into(),
        version: None,
        filename: name.into(),
        urls,
        size: Some(bytes.len() as u64),
        digests: vec![sha256(bytes)],
        arch: None,
        repo_id: None,
        path: format!("deps/generic/{name}"),
        origin: Origin {
            lockfile: "artifacts.lock.yaml".into(),
            line: Some(1),
        },
        details: Details::Generic,
    }
}

fn fast_options() -> FetchOptions {
    FetchOptions {
        retries: 3,
        read_timeout: Duration::from_millis(700),
        connect_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..FetchOptions::default()
    }
}

fn setup(upstream: UpstreamBuilder) -> (tempfile::TempDir, Store, Fetcher, Upstream) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    let fetcher = Fetcher::new(store.clone(), fast_options()).unwrap();
    (dir, store, fetcher, upstream.start().unwrap())
}

fn temp_files(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("v1/tmp"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_verifies_and_then_hits_the_cache() {
    let bytes = payload(300_000, 1);
    let (_d, store, fetcher, up) = setup(UpstreamBuilder::new().file("a.bin", bytes.clone()));
    let a = artifact("a.bin", &bytes, vec![up.url("a.bin")]);
    let first = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(first.source, Source::Download);
    assert_eq!(first.downloaded, bytes.len() as u64);
    assert_eq!(std::fs::read(&first.path).unwrap(), bytes);
    assert_eq!(first.path, store.entry_path(&a.digests[0]));
    let mode = std::fs::metadata(&first.path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o444, "store entries are read-only");
    let second = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(second.source, Source::Cache);
    assert_eq!(up.requests("a.bin"), 1);
    assert_eq!(temp_files(&store), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_bytes_are_rejected_and_nothing_is_kept() {
    let bytes = payload(50_000, 2);
    let (_d, store, fetcher, up) = setup(
        UpstreamBuilder::new()
            .file("w.bin", bytes.clone())
            .fault("w.bin", Fault::WrongBytes),
    );
    let a = artifact("w.bin", &bytes, vec![up.url("w.bin")]);
    let err = fetcher.ensure(&a, &NoProgress).await.unwrap_err();
    assert!(err.is_mismatch(), "{err}");
    let text = err.to_string();
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(
        text.contains(&a.digests[0].to_string()),
        "names the expected digest: {text}"
    );
    assert!(text.contains(&up.url("w.bin")), "names the URL: {text}");
    assert!(!store.contains(&a.digests[0]));
    assert_eq!(temp_files(&store), 0);
    assert_eq!(
        up.requests("w.bin"),
        1,
        "a mismatch is not retried on the same URL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_5xx_is_retried_then_succeeds() {
    let bytes = payload(10_000, 3);
    let (_d, _s, fetcher, up) = setup(UpstreamBuilder::new().file("r.bin", bytes.clone()).fault(
        "r.bin",
        Fault::Status {
            code: 503,
            times: 2,
        },
    ));
    let a = artifact("r.bin", &bytes, vec![up.url("r.bin")]);
    let got = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(got.source, Source::Download);
    assert_eq!(up.requests("r.bin"), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_5xx_gives_up_after_the_retries() {
    let bytes = payload(1_000, 4);
    let (_d, store, fetcher, up) =
        setup(UpstreamBuilder::new().file("p.bin", bytes.clone()).fault(
            "p.bin",
            Fault::Status {
                code: 500,
                times: 100,
            },
        ));
    let a = artifact("p.bin", &bytes, vec![up.url("p.bin")]);
    let err = fetcher.ensure(&a, &NoProgress).await.unwrap_err();
    assert!(
        matches!(err.attempts.last(), Some((_, Failure::Status(s))) if s.as_u16() == 500),
        "{err}"
    );
    assert_eq!(up.requests("p.bin"), 4, "1 try + 3 retries");
    assert!(!store.contains(&a.digests[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn not_found_is_not_retried_and_the_next_url_is_used() {
    let bytes = payload(2_000, 5);
    let (_d, _s, fetcher, up) = setup(UpstreamBuilder::new().file("mirror/m.bin", bytes.clone()));
    let a = artifact(
        "m.bin",
        &bytes,
        vec![up.url("missing/m.bin"), up.url("mirror/m.bin")],
    );
    let got = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(got.source, Source::Download);
    assert_eq!(up.requests("missing/m.bin"), 1);
    assert_eq!(up.requests("mirror/m.bin"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_connection_hits_the_read_deadline_and_resumes() {
    let bytes = payload(400_000, 6);
    let (_d, _s, fetcher, up) = setup(UpstreamBuilder::new().file("s.bin", bytes.clone()).fault(
        "s.bin",
        Fault::StallTimes {
            after_bytes: 100_000,
            times: 1,
        },
    ));
    let a = artifact("s.bin", &bytes, vec![up.url("s.bin")]);
    let start = Instant::now();
    let got = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    assert_eq!(up.requests("s.bin"), 2);
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "waited for the read deadline"
    );
    let stats = up.stats();
    let sent = stats
        .paths
        .get("/s.bin")
        .map(|p| p.bytes_sent)
        .expect("the path was requested");
    assert!(
        sent < 2 * bytes.len() as u64 - 50_000,
        "the retry resumed with Range instead of starting over: {sent} bytes sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_recovers_fails_in_bounded_time() {
    let bytes = payload(100_000, 7);
    let (_d, store, fetcher, up) = setup(
        UpstreamBuilder::new()
            .file("h.bin", bytes.clone())
            .fault("h.bin", Fault::Stall { after_bytes: 10 }),
    );
    let a = artifact("h.bin", &bytes, vec![up.url("h.bin")]);
    let start = Instant::now();
    let err = fetcher.ensure(&a, &NoProgress).await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30), "never hangs");
    assert_eq!(temp_files(&store), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn resets_and_truncation_are_survived_by_resuming() {
    let bytes = payload(500_000, 8);
    let (_d, _s, fetcher, up) = setup(UpstreamBuilder::new().file("x.bin", bytes.clone()).fault(
        "x.bin",
        Fault::Reset {
            after_bytes: 200_000,
            times: 2,
        },
    ));
    let a = artifact("x.bin", &bytes, vec![up.url("x.bin")]);
    let got = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    assert_eq!(up.requests("x.bin"), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_locked_size_is_an_error() {
    let bytes = payload(5_000, 9);
    let (_d, store, fetcher, up) = setup(UpstreamBuilder::new().file("z.bin", bytes.clone()));
    // Too long (the body runs past the locked size) and too short: either way the error
    // names both sizes and both digests, and nothing is kept.
    for locked in [4_000, 6_000] {
        let mut a = artifact("z.bin", &bytes, vec![up.url("z.bin")]);
        a.size = Some(locked);
        let err = fetcher.ensure(&a, &NoProgress).await.unwrap_err();
        match &err.attempts[0].1 {
            Failure::Store(StoreError::SizeMismatch {
                expected,
                actual,
                expected_digest,
                actual_digest,
            }) => {
                assert_eq!((*expected, *actual), (locked, 5_000), "{err}");
                assert_eq!(expected_digest, &a.digests[0]);
                assert_eq!(actual_digest.as_ref(), Some(&sha256(&bytes)), "{err}");
            }
            other => panic!("{locked}: not a size mismatch: {other}"),
        }
        let text = err.to_string();
        assert!(text.contains(&sha256(&bytes).to_string()), "{text}");
        assert!(!store.contains(&a.digests[0]));
        assert_eq!(temp_files(&store), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_ensures_of_one_digest_download_once() {
    let bytes = payload(200_000, 10);
    let (_d, _s, fetcher, up) = setup(
        UpstreamBuilder::new()
            .file("c.bin", bytes.clone())
            .latency(Duration::from_millis(100)),
    );
    let a = Arc::new(artifact("c.bin", &bytes, vec![up.url("c.bin")]));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (f, a) = (fetcher.clone(), a.clone());
            tokio::spawn(async move { f.ensure(&a, &NoProgress).await.map(|x| x.source) })
        })
        .collect();
    let mut downloads = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Source::Download {
            downloads += 1;
        }
    }
    assert_eq!(downloads, 1);
    assert_eq!(up.requests("c.bin"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_downloads_are_bounded_by_jobs() {
    let files: Vec<Vec<u8>> = (0..12).map(|i| payload(20_000, 20 + i)).collect();
    let mut builder = UpstreamBuilder::new().latency(Duration::from_millis(150));
    for (i, f) in files.iter().enumerate() {
        builder = builder.file(&format!("j{i}.bin"), f.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fetcher = Fetcher::new(
        store,
        FetchOptions {
            jobs: 4,
            ..fast_options()
        },
    )
    .unwrap();
    let up = builder.start().unwrap();
    let artifacts: Vec<Artifact> = files
        .iter()
        .enumerate()
        .map(|(i, f)| artifact(&format!("j{i}.bin"), f, vec![up.url(&format!("j{i}.bin"))]))
        .collect();
    let results =
        futures_util::future::join_all(artifacts.iter().map(|a| fetcher.ensure(a, &NoProgress)))
            .await;
    assert!(results.iter().all(|r| r.is_ok()));
    let max = up.stats().max_concurrent_connections;
    assert!(
        (2..=4).contains(&max),
        "at most 4 connections at once, and some parallelism: {max}"
    );
}

#[test]
fn stale_temp_files_are_cleaned_but_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tmp = dir.path().join("v1/tmp");
    std::fs::write(tmp.join("dead.part"), b"half").unwrap();
    let live = store.begin(&sha256(b"x"), None).unwrap();
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 2);
    let reopened = Store::open(dir.path()).unwrap();
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "only the live writer's temp file remains: {left:?}"
    );
    assert!(!left[0].to_string_lossy().starts_with("dead"));
    drop(live);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "an abandoned entry removes its temp file"
    );
    drop(reopened);
}

#[test]
fn link_into_hard_links_and_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    let d = sha256(b"hello");
    strata_store::insert_bytes(&store, &d, b"hello").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dest = out.join("f");
    std::fs::write(&dest, b"old").unwrap();
    assert_eq!(store.link_into(&d, &dest).unwrap(), Placement::Linked);
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
    assert_eq!(
        std::fs::metadata(&dest).unwrap().ino(),
        std::fs::metadata(store.entry_path(&d)).unwrap().ino()
    );
    assert_eq!(store.link_into(&d, &dest).unwrap(), Placement::AlreadyThere);
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "no temp names left behind"
    );
}

#[test]
fn link_into_copies_across_filesystems() {
    let shm = Path::new("/dev/shm");
    let dir = tempfile::tempdir().unwrap();
    let other_fs = shm.is_dir()
        && std::fs::metadata(shm).map(|m| m.dev()).ok()
            != std::fs::metadata(dir.path()).map(|m| m.dev()).ok();
    if !other_fs {
        assert!(
            std::env::var("STRATA_TEST_REQUIRE_ALL").is_err(),
            "/dev/shm is needed as a second filesystem"
        );
        eprintln!("SKIP: /dev/shm is not a separate filesystem here");
        return;
    }
    let store = Store::open(dir.path()).unwrap();
    let d = sha256(b"cross");
    strata_store::insert_bytes(&store, &d, b"cross").unwrap();
    let out = tempfile::tempdir_in(shm).unwrap();
    let dest = out.path().join("f");
    assert_eq!(store.link_into(&d, &dest).unwrap(), Placement::Copied);
    assert_eq!(std::fs::read(&dest).unwrap(), b"cross");
}

#[test]
fn verify_finds_and_repairs_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let good = sha256(b"good");
    let bad = sha256(b"bad");
    strata_store::insert_bytes(&store, &good, b"good").unwrap();
    strata_store::insert_bytes(&store, &bad, b"bad").unwrap();
    let path = store.entry_path(&bad);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&path, b"BAD").unwrap();
    let report = store.verify(2, false).unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].0, path);
    assert!(!report.is_clean());
    let repaired = store.verify(2, true).unwrap();
    assert_eq!(repaired.removed, 1);
    assert!(!store.contains(&bad));
    assert!(store.verify(2, false).unwrap().is_clean());
    assert!(store.contains(&good));
}

#[test]
fn gc_evicts_least_recently_used_to_a_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pause = || std::thread::sleep(Duration::from_millis(40));
    let digests: Vec<Digest> = (0..4u8)
        .map(|i| {
            pause();
            let bytes = vec![i; 1000];
            let d = sha256(&bytes);
            strata_store::insert_bytes(&store, &d, &bytes).unwrap();
            d
        })
        .collect();
    // Linking the oldest entry into an output tree is a use (it changes the entry's ctime), so
    // entries 1 and 2 are now the least recently used.
    pause();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let placed = store.link_if_present(&digests[0], &out.join("a")).unwrap();
    assert_eq!(placed, Some(strata_store::Placement::Linked));
    let dry = store
        .gc(&strata_store::GcPolicy {
            max_size: Some(2500),
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((dry.removed, dry.kept), (2, 2));
    assert!(
        digests.iter().all(|d| store.contains(d)),
        "a dry run removes nothing"
    );
    let report = store
        .gc(&strata_store::GcPolicy {
            max_size: Some(2500),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((report.removed, report.freed), (2, 2000));
    assert!(
        !store.contains(&digests[1]) && !store.contains(&digests[2]),
        "the least recently used go first"
    );
    assert!(store.contains(&digests[0]) && store.contains(&digests[3]));
    // Age: entry 3 was last used ≥ 400 ms ago, entry 0 is touched now.
    std::thread::sleep(Duration::from_millis(400));
    store.touch(&digests[0]);
    let aged = store
        .gc(&strata_store::GcPolicy {
            max_age: Some(Duration::from_millis(200)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(aged.removed, 1);
    assert!(store.contains(&digests[0]) && !store.contains(&digests[3]));
    assert_eq!(
        store.link_if_present(&digests[3], &out.join("b")).unwrap(),
        None,
        "a missing entry is reported, not an error"
    );
    assert!(!out.join("b").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_body_is_never_accepted() {
    let bytes = payload(100_000, 11);
    let (_d, store, fetcher, up) =
        setup(UpstreamBuilder::new().file("t.bin", bytes.clone()).fault(
            "t.bin",
            Fault::Truncate {
                after_bytes: 30_000,
            },
        ));
    let mut a = artifact("t.bin", &bytes, vec![up.url("t.bin")]);
    a.size = None; // even without a locked size, the digest catches it
    let result = fetcher.ensure(&a, &NoProgress).await;
    // The downloader resumes after each truncation with Range, so it either assembles the
    // right bytes or fails; it must never store anything else.
    match result {
        Ok(got) => assert_eq!(std::fs::read(&got.path).unwrap(), bytes),
        Err(e) => assert!(!store.contains(&a.digests[0]), "{e}"),
    }
    assert!(up.requests("t.bin") >= 2);
    assert_eq!(temp_files(&store), 0);
}

/// A full disk: a real tmpfs too small for the artifact. Needs root (mount); CI runs as root.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("STRATA_TEST_REQUIRE_ALL").is_err(),
            "mounting a tmpfs needs root"
        );
        eprintln!("SKIP: cannot mount a tmpfs (not root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let bytes = payload(1_000_000, 12);
    let up = UpstreamBuilder::new()
        .file("big.bin", bytes.clone())
        .start()
        .unwrap();
    let store = Store::open(&mnt).unwrap();
    let fetcher = Fetcher::new(store.clone(), fast_options()).unwrap();
    let a = artifact("big.bin", &bytes, vec![up.url("big.bin")]);
    let err = fetcher.ensure(&a, &NoProgress).await.unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(up.requests("big.bin"), 1, "a full disk is not retried");
    assert_eq!(temp_files(&store), 0, "nothing partial is kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_reused_across_downloads() {
    let files: Vec<Vec<u8>> = (0..10).map(|i| payload(30_000, 40 + i)).collect();
    let mut builder = UpstreamBuilder::new();
    for (i, f) in files.iter().enumerate() {
        builder = builder.file(&format!("k{i}.bin"), f.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fetcher = Fetcher::new(
        store,
        FetchOptions {
            jobs: 1,
            ..fast_options()
        },
    )
    .unwrap();
    let up = builder.start().unwrap();
    for (i, f) in files.iter().enumerate() {
        let a = artifact(&format!("k{i}.bin"), f, vec![up.url(&format!("k{i}.bin"))]);
        fetcher.ensure(&a, &NoProgress).await.unwrap();
    }
    let stats = up.stats();
    assert_eq!(stats.total_requests, 10);
    // hyper hands a finished connection back to its pool from a spawned task, so a request
    // sent the instant the previous body ended can race it and open a second connection
    // (seen in CI). Without keep-alive every download would open its own: 10.
    assert!(
        stats.connections <= 3,
        "keep-alive connections served the downloads, not one connection each: {} connections",
        stats.connections
    );
}

/// A fetcher that splits downloads of sized artifacts into 4 ranges of at least 64 KiB.
fn split_fetcher(store: &Store) -> Fetcher {
    let options = FetchOptions {
        segments: 4,
        segment_min: 64 * 1024,
        ..fast_options()
    };
    Fetcher::new(store.clone(), options).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sized_download_is_split_into_parallel_ranges_and_verified() {
    let bytes = payload(800_000, 21);
    let (_d, store, _f, up) = setup(
        UpstreamBuilder::new()
            .file("s.bin", bytes.clone())
            .rate_limit(4_000_000),
    );
    let fetcher = split_fetcher(&store);
    let a = artifact("s.bin", &bytes, vec![up.url("s.bin")]);
    let got = fetcher.ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(got.source, Source::Download);
    assert_eq!(got.size, 800_000);
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    let stats = up.stats();
    assert_eq!(stats.get("s.bin"), 4, "one request per part");
    assert_eq!(stats.max_concurrent_requests, 4, "the parts run at once");
    assert_eq!(stats.bytes_sent, 800_000, "no byte is fetched twice");
    assert_eq!(temp_files(&store), 0);
    // Unsized artifacts, and sized ones below two minimum parts, are one stream.
    let small = payload(100_000, 22);
    let mut no_size = artifact("u.bin", &bytes, vec![up.url("s.bin")]);
    no_size.size = None;
    no_size.digests = vec![sha256(&bytes)];
    std::fs::remove_file(&got.path).unwrap();
    up.reset_stats();
    fetcher.ensure(&no_size, &NoProgress).await.unwrap();
    assert_eq!(up.requests("s.bin"), 1);
    let (_d2, store2, _f2, up2) = setup(UpstreamBuilder::new().file("t.bin", small.clone()));
    let t = artifact("t.bin", &small, vec![up2.url("t.bin")]);
    split_fetcher(&store2)
        .ensure(&t, &NoProgress)
        .await
        .unwrap();
    assert_eq!(up2.requests("t.bin"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_bytes_in_a_split_download_are_rejected_and_nothing_is_kept() {
    let bytes = payload(600_000, 23);
    let (_d, store, _f, up) = setup(
        UpstreamBuilder::new()
            .file("w.bin", bytes.clone())
            .fault("w.bin", Fault::WrongBytes),
    );
    let a = artifact("w.bin", &bytes, vec![up.url("w.bin")]);
    let err = split_fetcher(&store)
        .ensure(&a, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.is_mismatch(), "{err}");
    assert!(err.to_string().contains(&up.url("w.bin")), "{err}");
    assert!(!store.contains(&a.digests[0]));
    assert_eq!(temp_files(&store), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_ranges_gets_one_stream() {
    let bytes = payload(600_000, 24);
    let (_d, store, _f, up) = setup(
        UpstreamBuilder::new()
            .file("n.bin", bytes.clone())
            .fault("n.bin", Fault::NoRanges),
    );
    let a = artifact("n.bin", &bytes, vec![up.url("n.bin")]);
    let got = split_fetcher(&store).ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    let requests = up.requests("n.bin");
    assert!(
        (2..=5).contains(&requests),
        "the ranged tries, then one whole stream: {requests}"
    );
    assert_eq!(temp_files(&store), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_part_resumes_on_its_own() {
    let bytes = payload(800_000, 25);
    let (_d, store, _f, up) = setup(UpstreamBuilder::new().file("r.bin", bytes.clone()).fault(
        "r.bin",
        Fault::Reset {
            after_bytes: 50_000,
            times: 1,
        },
    ));
    let a = artifact("r.bin", &bytes, vec![up.url("r.bin")]);
    let got = split_fetcher(&store).ensure(&a, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    assert_eq!(up.requests("r.bin"), 5, "4 parts and one resumed part");
    assert!(
        up.stats().bytes_sent < 800_000 + 50_000 + 16_384,
        "only the broken part's rest is fetched again: {}",
        up.stats().bytes_sent
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_download_with_a_wrong_locked_size_names_the_size() {
    let bytes = payload(500_000, 26);
    let (_d, store, _f, up) = setup(UpstreamBuilder::new().file("z.bin", bytes.clone()));
    for locked in [400_000, 600_000] {
        let mut a = artifact("z.bin", &bytes, vec![up.url("z.bin")]);
        a.size = Some(locked);
        let err = split_fetcher(&store)
            .ensure(&a, &NoProgress)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.attempts[0].1,
                Failure::Store(StoreError::SizeMismatch { expected, .. }) if expected == locked
            ),
            "{locked}: {err}"
        );
        assert!(!store.contains(&a.digests[0]));
        assert_eq!(temp_files(&store), 0);
    }
}
