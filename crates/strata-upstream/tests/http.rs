//! Plain HTTP behaviour of the upstream, over real sockets: GET, HEAD, ranges, 404,
//! keep-alive, counting, control endpoints, directory serving, latency, rate limit.

mod common;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Raw, content};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use strata_upstream::{Stats, UpstreamBuilder};

#[tokio::test]
async fn get_serves_the_bytes_with_length() {
    let data = content(100_000);
    let up = UpstreamBuilder::new()
        .file("pkgs/a-1.0.tgz", data.clone())
        .start()
        .unwrap();
    let resp = common::get(up.url("pkgs/a-1.0.tgz")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_LENGTH], "100000");
    assert_eq!(resp.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(resp.bytes().await.unwrap(), data);
    assert_eq!(up.requests("pkgs/a-1.0.tgz"), 1);
    assert_eq!(up.requests("/pkgs/a-1.0.tgz"), 1, "leading slash optional");
    assert_eq!(up.stats().bytes_sent, 100_000);
}

#[tokio::test]
async fn head_has_headers_but_no_body_and_is_counted_apart() {
    let up = UpstreamBuilder::new()
        .file("f.bin", content(5000))
        .start()
        .unwrap();
    let client = common::client();
    let resp = client.head(up.url("f.bin")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_LENGTH], "5000");
    assert!(resp.bytes().await.unwrap().is_empty());

    // On a raw connection: a HEAD then a GET parse cleanly, so HEAD sent no body.
    let mut raw = Raw::connect(up.addr());
    raw.send("HEAD", "/f.bin", &[]);
    let head = raw.read_head().unwrap();
    assert_eq!(head.content_length(), 5000);
    let (head, body) = raw.get("/f.bin", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(body, content(5000));

    let stats = up.stats();
    assert_eq!(up.requests("f.bin"), 1, "requests() counts GET only");
    assert_eq!(stats.paths["/f.bin"].head, 2);
    assert_eq!(stats.paths["/f.bin"].get, 1);
    assert_eq!(stats.total_requests, 3);
}

#[tokio::test]
async fn single_ranges_give_206_and_content_range() {
    let data = content(1000);
    let up = UpstreamBuilder::new()
        .file("r", data.clone())
        .start()
        .unwrap();
    let client = common::client();
    let cases: [(&str, usize, usize); 5] = [
        ("bytes=0-99", 0, 99),
        ("bytes=990-", 990, 999),
        ("bytes=-10", 990, 999),
        ("bytes=500-5000", 500, 999),
        ("bytes=-5000", 0, 999),
    ];
    for (range, start, end) in cases {
        let resp = client
            .get(up.url("r"))
            .header(RANGE, range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            resp.headers()[CONTENT_RANGE],
            format!("bytes {start}-{end}/1000").as_str(),
            "{range}"
        );
        assert_eq!(
            resp.headers()[CONTENT_LENGTH],
            (end - start + 1).to_string().as_str()
        );
        assert_eq!(resp.bytes().await.unwrap(), &data[start..=end], "{range}");
    }

    for range in ["bytes=1000-", "bytes=2000-3000", "bytes=-0"] {
        let resp = client
            .get(up.url("r"))
            .header(RANGE, range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(resp.headers()[CONTENT_RANGE], "bytes */1000");
    }

    // Several ranges are not supported: the whole body, 200.
    let resp = client
        .get(up.url("r"))
        .header(RANGE, "bytes=0-1,5-6")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), data);

    // HEAD with a range reports the partial length.
    let resp = client
        .head(up.url("r"))
        .header(RANGE, "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()[CONTENT_LENGTH], "10");
}

#[tokio::test]
async fn unknown_paths_are_404_and_counted() {
    let up = UpstreamBuilder::new().file("here", "x").start().unwrap();
    let resp = common::get(up.url("missing.tgz")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(up.requests("missing.tgz"), 1);

    let resp = common::client().post(up.url("here")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn percent_encoded_paths_are_decoded() {
    let up = UpstreamBuilder::new()
        .file("npm/@scope/name-1.0.tgz", "scoped")
        .start()
        .unwrap();
    let resp = common::get(format!("http://{}/npm/%40scope/name-1.0.tgz", up.addr()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "scoped");
    assert_eq!(up.requests("npm/@scope/name-1.0.tgz"), 1);
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let up = UpstreamBuilder::new()
        .file("a", content(3000))
        .file("b", content(7000))
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    let (head, body) = raw.get("/a", &[]);
    assert_eq!((head.status, body.len()), (200, 3000));
    let (head, body) = raw.get("/b", &[]);
    assert_eq!((head.status, body), (200, content(7000)));
    let stats = up.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.total_requests, 2);

    // reqwest's pool reuses its connection too.
    let client = reqwest::blocking::Client::new();
    for _ in 0..3 {
        let body = client.get(up.url("a")).send().unwrap().bytes().unwrap();
        assert_eq!(body.len(), 3000);
    }
    // One more connection, or two if a request raced hyper's return of the idle connection
    // to its pool (it happens from a spawned task); three requests without keep-alive: 4.
    let connections = up.stats().connections;
    assert!((2..=3).contains(&connections), "{connections} connections");
}

#[test]
fn works_from_sync_code_and_drop_stops_the_server() {
    let up = UpstreamBuilder::new().file("x", "hello").start().unwrap();
    let addr = up.addr();
    let body = common::blocking_get(up.url("x")).unwrap().text().unwrap();
    assert_eq!(body, "hello");
    drop(up);
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener must be closed after drop"
    );
}

#[test]
fn counts_max_concurrent_connections() {
    let up = UpstreamBuilder::new().file("x", "hello").start().unwrap();
    let conns: Vec<Raw> = (0..4)
        .map(|_| {
            let mut raw = Raw::connect(up.addr());
            let (head, _) = raw.get("/x", &[]);
            assert_eq!(head.status, 200);
            raw
        })
        .collect();
    let stats = up.stats();
    assert_eq!(stats.connections, 4);
    assert_eq!(stats.max_concurrent_connections, 4);
    drop(conns);
}

#[tokio::test]
async fn stats_and_reset_endpoints() {
    let up = UpstreamBuilder::new()
        .file("a", content(10))
        .file("b", content(20))
        .start()
        .unwrap();
    let client = common::client();
    for path in ["a", "a", "b", "nope"] {
        client.get(up.url(path)).send().await.unwrap();
    }
    let json = client
        .get(up.url("_upstream/stats"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stats: Stats = serde_json::from_str(&json).unwrap();
    assert_eq!(stats, up.stats(), "the endpoint shows the same counters");
    assert_eq!(stats.get("a"), 2);
    assert_eq!(stats.get("b"), 1);
    assert_eq!(stats.get("nope"), 1);
    assert_eq!(stats.total_requests, 4, "control endpoints are not counted");
    assert_eq!(stats.bytes_sent, 40);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["paths"]["/a"]["get"], 2);
    assert_eq!(value["bytes_sent"], 40);

    let resp = client.post(up.url("_upstream/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let stats = up.stats();
    assert_eq!(stats.total_requests, 0);
    assert_eq!(stats.bytes_sent, 0);
    assert!(stats.paths.is_empty());
    assert_eq!(up.requests("a"), 0);

    client.get(up.url("b")).send().await.unwrap();
    assert_eq!(up.requests("b"), 1);
    up.reset_stats();
    assert_eq!(up.requests("b"), 0);
}

#[test]
fn serves_a_directory_tree_and_refuses_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("deps/pip")).unwrap();
    std::fs::write(root.join("deps/pip/a-1.0.whl"), content(4321)).unwrap();
    std::fs::write(dir.path().join("secret"), "outside").unwrap();
    let up = UpstreamBuilder::new().dir(&root).start().unwrap();

    let mut raw = Raw::connect(up.addr());
    let (head, body) = raw.get("/deps/pip/a-1.0.whl", &[]);
    assert_eq!((head.status, body), (200, content(4321)));
    let (head, body) = raw.get("/deps/pip/a-1.0.whl", &["Range: bytes=4000-"]);
    assert_eq!(head.status, 206);
    assert_eq!(body, &content(4321)[4000..]);
    let (head, _) = raw.get("/deps/pip", &[]);
    assert_eq!(head.status, 404, "directories are not served");
    let (head, _) = raw.get("/../secret", &[]);
    assert_eq!(head.status, 404, "`..` must not escape the root");
    let (head, _) = raw.get("/deps/%2e%2e/%2e%2e/secret", &[]);
    assert_eq!(head.status, 404, "encoded `..` must not escape the root");
}

/// A 3 GiB sparse file: served with the right length, random access by range works at
/// the far end, and a full GET streams (we read the first 16 MiB and hang up).
#[tokio::test]
async fn streams_a_multi_gigabyte_file_from_disk() {
    const SIZE: u64 = 3 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.img");
    let mut file = File::create(&path).unwrap();
    file.set_len(SIZE).unwrap();
    file.seek(SeekFrom::Start(SIZE - 5)).unwrap();
    file.write_all(b"tail!").unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(b"head!").unwrap();
    drop(file);
    let up = UpstreamBuilder::new().dir(dir.path()).start().unwrap();
    let client = common::client();

    let resp = client.head(up.url("big.img")).send().await.unwrap();
    assert_eq!(resp.headers()[CONTENT_LENGTH], SIZE.to_string().as_str());

    let resp = client
        .get(up.url("big.img"))
        .header(RANGE, "bytes=-8")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&resp.bytes().await.unwrap()[..], b"\0\0\0tail!");

    let mut resp = client.get(up.url("big.img")).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(SIZE));
    let mut got = Vec::new();
    while got.len() < 16 << 20 {
        let chunk = resp.chunk().await.unwrap().expect("more body");
        got.extend_from_slice(&chunk);
    }
    assert_eq!(&got[..5], b"head!");
    assert!(got[5..].iter().all(|&b| b == 0));
    drop(resp);
    let sent = up.stats().bytes_sent;
    assert!(
        sent < 1 << 30,
        "the body must be produced as it is consumed, not read whole ({sent} bytes sent)"
    );
}

#[tokio::test]
async fn latency_delays_every_response() {
    let up = UpstreamBuilder::new()
        .file("x", "x")
        .latency(Duration::from_millis(200))
        .start()
        .unwrap();
    let client = common::client();
    for _ in 0..2 {
        let started = Instant::now();
        let resp = client.get(up.url("x")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            started.elapsed() >= Duration::from_millis(190),
            "took {:?}",
            started.elapsed()
        );
    }
    // Control endpoints are not delayed (and still answer).
    let resp = client.get(up.url("_upstream/stats")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_caps_connection_throughput() {
    let data = content(1_000_000);
    let up = UpstreamBuilder::new()
        .file("big", data.clone())
        .rate_limit(4_000_000)
        .start()
        .unwrap();
    let started = Instant::now();
    let body = common::get(up.url("big"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(body, data);
    // 1 MB at 4 MB/s is 0.25 s; allow for the first chunk going out at once.
    assert!(took >= Duration::from_millis(200), "took {took:?}");
}

#[test]
fn rate_limit_budget_is_shared_by_requests_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("half"), content(500_000)).unwrap();
    let up = UpstreamBuilder::new()
        .dir(dir.path())
        .rate_limit(4_000_000)
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    let started = Instant::now();
    for _ in 0..2 {
        let (head, body) = raw.get("/half", &[]);
        assert_eq!((head.status, body), (200, content(500_000)));
    }
    let took = started.elapsed();
    // 2 × 500 kB at 4 MB/s on one connection is 0.25 s.
    assert!(took >= Duration::from_millis(200), "took {took:?}");
    assert_eq!(up.stats().connections, 1);
}

#[test]
fn upstream_handles_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<strata_upstream::Upstream>();
    assert_send_sync::<UpstreamBuilder>();
}
