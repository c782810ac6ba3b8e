//! Every fault kind, observed by a real client over real sockets.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::{Raw, content};
use reqwest::StatusCode;
use reqwest::header::RANGE;
use strata_upstream::{Fault, UpstreamBuilder};

#[tokio::test]
async fn status_fault_answers_503_twice_then_200() {
    let data = content(2048);
    let up = UpstreamBuilder::new()
        .file("a.tgz", data.clone())
        .fault(
            "a.tgz",
            Fault::Status {
                code: 503,
                times: 2,
            },
        )
        .start()
        .unwrap();
    let client = common::client();
    let statuses = [
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::OK,
        StatusCode::OK,
    ];
    for want in statuses {
        let resp = client.get(up.url("a.tgz")).send().await.unwrap();
        assert_eq!(resp.status(), want);
        if want == StatusCode::OK {
            assert_eq!(resp.bytes().await.unwrap(), data);
        }
    }
    assert_eq!(up.requests("a.tgz"), 4, "faulted GETs count too");
}

#[tokio::test]
async fn head_is_never_faulted_and_does_not_use_up_a_fault() {
    let up = UpstreamBuilder::new()
        .file("a", "abc")
        .fault(
            "a",
            Fault::Status {
                code: 500,
                times: 1,
            },
        )
        .start()
        .unwrap();
    let client = common::client();
    let resp = client.head(up.url("a")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client.get(up.url("a")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let resp = client.get(up.url("a")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn status_fault_applies_to_missing_paths_too() {
    let up = UpstreamBuilder::new()
        .fault(
            "gone",
            Fault::Status {
                code: 429,
                times: 1,
            },
        )
        .start()
        .unwrap();
    let client = common::client();
    let first = client.get(up.url("gone")).send().await.unwrap().status();
    let second = client.get(up.url("gone")).send().await.unwrap().status();
    assert_eq!(
        (first, second),
        (StatusCode::TOO_MANY_REQUESTS, StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn wrong_bytes_keeps_length_but_changes_content() {
    let data = content(300_000);
    let up = UpstreamBuilder::new()
        .file("w", data.clone())
        .fault("w", Fault::WrongBytes)
        .start()
        .unwrap();
    let client = common::client();
    let resp = client.get(up.url("w")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.content_length(), Some(300_000));
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), data.len());
    assert!(
        body.iter().zip(&data).all(|(a, b)| a != b),
        "every byte is corrupted"
    );

    // Ranges are corrupted too.
    let body = client
        .get(up.url("w"))
        .header(RANGE, "bytes=10-19")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 10);
    assert_ne!(&body[..], &data[10..20]);

    up.set_fault("w", None);
    let body = client
        .get(up.url("w"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, data, "clearing the fault restores the content");
}

#[test]
fn stall_sends_headers_and_n_bytes_then_hangs_with_the_connection_open() {
    let data = content(100_000);
    let up = UpstreamBuilder::new()
        .file("s", data.clone())
        .file("other", "fine")
        .fault("s", Fault::Stall { after_bytes: 1000 })
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    raw.send("GET", "/s", &[]);
    let head = raw.read_head().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.content_length(),
        100_000,
        "the full length is declared"
    );
    assert_eq!(raw.read_body(1000).unwrap(), &data[..1000]);

    raw.set_read_timeout(Duration::from_millis(600));
    let started = Instant::now();
    let (more, end) = raw.read_to_end();
    assert!(more.is_empty(), "no byte after the stall point");
    let err = end.expect_err("the connection must stay open, not reach EOF");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "expected a read timeout, got {err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Stall with 0 bytes: headers arrive, then nothing.
    up.set_fault("s", Some(Fault::Stall { after_bytes: 0 }));
    let mut raw2 = Raw::connect(up.addr());
    raw2.send("GET", "/s", &[]);
    assert_eq!(raw2.read_head().unwrap().status, 200);
    raw2.set_read_timeout(Duration::from_millis(300));
    let (more, end) = raw2.read_to_end();
    assert!(more.is_empty() && end.is_err());

    // The server keeps serving others meanwhile.
    let mut other = Raw::connect(up.addr());
    let (head, body) = other.get("/other", &[]);
    assert_eq!((head.status, &body[..]), (200, &b"fine"[..]));
    assert_eq!(up.requests("s"), 2);
}

#[tokio::test]
async fn stall_times_stalls_the_first_requests_only() {
    let data = content(50_000);
    let up = UpstreamBuilder::new()
        .file("s", data.clone())
        .fault(
            "s",
            Fault::StallTimes {
                after_bytes: 100,
                times: 1,
            },
        )
        .start()
        .unwrap();
    let client = common::client_builder()
        .read_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let resp = client.get(up.url("s")).send().await.unwrap();
    let err = resp.bytes().await.expect_err("the first request stalls");
    assert!(err.is_timeout() || err.is_body(), "{err}");

    let body = client
        .get(up.url("s"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, data);
    assert_eq!(up.requests("s"), 2);
}

#[test]
fn reset_aborts_the_connection_mid_body_then_recovers() {
    let data = content(500_000);
    let up = UpstreamBuilder::new()
        .file("r", data.clone())
        .fault(
            "r",
            Fault::Reset {
                after_bytes: 4096,
                times: 1,
            },
        )
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    raw.send("GET", "/r", &[]);
    let head = raw.read_head().unwrap();
    assert_eq!(head.content_length(), 500_000);
    let (got, end) = raw.read_to_end();
    assert_eq!(got, &data[..4096], "after_bytes arrive before the reset");
    let err = end.expect_err("a reset, not a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

    // times: 1 → the next request is served in full.
    let body = common::blocking_get(up.url("r")).unwrap().bytes().unwrap();
    assert_eq!(body, data);
}

#[tokio::test]
async fn reset_is_a_client_error() {
    let up = UpstreamBuilder::new()
        .file("r", content(100_000))
        .fault(
            "r",
            Fault::Reset {
                after_bytes: 10,
                times: 2,
            },
        )
        .start()
        .unwrap();
    let client = common::client();
    for _ in 0..2 {
        let result = match client.get(up.url("r")).send().await {
            Ok(resp) => resp.bytes().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(result.is_err(), "a reset body must fail");
    }
    let body = client
        .get(up.url("r"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 100_000);
}

#[test]
fn truncate_declares_full_length_and_closes_early() {
    let data = content(200_000);
    let up = UpstreamBuilder::new()
        .file("t", data.clone())
        .fault("t", Fault::Truncate { after_bytes: 5000 })
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    raw.send("GET", "/t", &[]);
    let head = raw.read_head().unwrap();
    assert_eq!(head.content_length(), 200_000);
    let (got, end) = raw.read_to_end();
    end.expect("a clean close (FIN), not a reset");
    assert_eq!(got, &data[..5000], "exactly after_bytes, then EOF");

    let err = common::blocking_get(up.url("t"))
        .and_then(|r| r.bytes())
        .expect_err("a short body must be a client error");
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err}"
    );
    assert_eq!(up.requests("t"), 2, "truncate applies every time");
}

#[tokio::test]
async fn slow_throttles_one_path() {
    let data = content(100_000);
    let up = UpstreamBuilder::new()
        .file("slow", data.clone())
        .file("fast", data.clone())
        .fault(
            "slow",
            Fault::Slow {
                bytes_per_sec: 200_000,
            },
        )
        .start()
        .unwrap();
    let client = common::client();
    let started = Instant::now();
    let body = client
        .get(up.url("slow"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(body, data);
    // 100 kB at 200 kB/s is 0.5 s.
    assert!(took >= Duration::from_millis(400), "took {took:?}");

    let body = client
        .get(up.url("fast"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, data);
}

#[tokio::test]
async fn faults_can_be_set_and_cleared_at_runtime() {
    let up = UpstreamBuilder::new().file("x", "ok").start().unwrap();
    let client = common::client();
    let get = || async { client.get(up.url("x")).send().await.unwrap().status() };
    assert_eq!(get().await, StatusCode::OK);
    up.set_fault(
        "/x",
        Some(Fault::Status {
            code: 502,
            times: u32::MAX,
        }),
    );
    assert_eq!(get().await, StatusCode::BAD_GATEWAY);
    assert_eq!(get().await, StatusCode::BAD_GATEWAY);
    up.set_fault("x", None);
    assert_eq!(get().await, StatusCode::OK);
    // Setting a fault again restarts its count.
    for _ in 0..2 {
        up.set_fault(
            "x",
            Some(Fault::Status {
                code: 503,
                times: 1,
            }),
        );
        assert_eq!(get().await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get().await, StatusCode::OK);
    }
}

#[test]
fn fault_offsets_count_from_the_start_of_a_range() {
    let data = content(10_000);
    let up = UpstreamBuilder::new()
        .file("t", data.clone())
        .fault("t", Fault::Truncate { after_bytes: 100 })
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    raw.send("GET", "/t", &["Range: bytes=5000-"]);
    let head = raw.read_head().unwrap();
    assert_eq!(head.status, 206);
    let (got, _) = raw.read_to_end();
    assert_eq!(got, &data[5000..5100]);

    // A fault beyond the body lets it all through.
    up.set_fault(
        "t",
        Some(Fault::Truncate {
            after_bytes: 20_000,
        }),
    );
    let mut raw = Raw::connect(up.addr());
    let (head, body) = raw.get("/t", &[]);
    assert_eq!((head.status, body), (200, data));
}

#[test]
fn dropping_the_upstream_closes_stalled_connections() {
    let up = UpstreamBuilder::new()
        .file("s", content(10_000))
        .fault("s", Fault::Stall { after_bytes: 10 })
        .start()
        .unwrap();
    let mut raw = Raw::connect(up.addr());
    raw.send("GET", "/s", &[]);
    assert_eq!(raw.read_head().unwrap().status, 200);
    assert_eq!(raw.read_body(10).unwrap().len(), 10);
    drop(up);
    raw.set_read_timeout(Duration::from_secs(10));
    let (more, end) = raw.read_to_end();
    assert!(more.is_empty());
    if let Err(e) = end {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the connection must be closed by the drop, not left hanging"
        );
    }
}
