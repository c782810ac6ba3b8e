//! The `strata-upstream` binary, run as a separate process the way benchmarks do.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_upstream::Stats;

const BIN: &str = env!("CARGO_BIN_EXE_strata-upstream");

/// Kills the child if a test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first line the server prints on stdout.
fn first_line(server: &mut Server) -> String {
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(Instant::now() < deadline, "no port file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_a_directory_with_faults_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("deps")).unwrap();
    std::fs::write(root.join("deps/a-1.0.tgz"), b"package bytes").unwrap();
    let port_file = dir.path().join("upstream.port");

    let mut server = Server(
        Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(["--latency-ms", "1", "--rate", "20MB"])
            .args(["--fault", "deps/a-1.0.tgz=status:503:1"])
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let port: u16 = wait_for_file(&port_file).trim().parse().unwrap();
    assert_eq!(
        first_line(&mut server),
        format!("listening on http://127.0.0.1:{port}")
    );

    let url = format!("http://127.0.0.1:{port}/deps/a-1.0.tgz");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::new();
    assert_eq!(client.get(&url).send().unwrap().status(), 503);
    let resp = client.get(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.bytes().unwrap()[..], b"package bytes");

    let stats_url = format!("http://127.0.0.1:{port}/_upstream/stats");
    let stats: Stats =
        serde_json::from_str(&client.get(&stats_url).send().unwrap().text().unwrap()).unwrap();
    assert_eq!(stats.get("deps/a-1.0.tgz"), 2);
    assert_eq!(
        stats.bytes_sent, 13,
        "only file content counts as bytes sent"
    );

    let reset = client
        .post(format!("http://127.0.0.1:{port}/_upstream/reset"))
        .send()
        .unwrap();
    assert_eq!(reset.status(), 200);
    let stats: Stats =
        serde_json::from_str(&client.get(&stats_url).send().unwrap().text().unwrap()).unwrap();
    assert_eq!(stats.total_requests, 0);

    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {}", server.0.id()))
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit on SIGTERM, got {exit}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is closed after exit"
    );
}

#[test]
fn rejects_bad_arguments_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let cases: [&[&str]; 4] = [
        &["--root", root, "--rate", "fast"],
        &["--root", root, "--fault", "a.tgz=explode"],
        &["--root", root, "--fault", "no-equals-sign"],
        &["--root", "/nonexistent/strata-upstream-root"],
    ];
    for args in cases {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn help_documents_options_and_fault_specs() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--root",
        "--addr",
        "--latency-ms",
        "--rate",
        "--fault",
        "--port-file",
        "status:CODE[:TIMES]",
        "/_upstream/stats",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn tls_ca_serves_https_and_writes_the_ca_before_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let port_file = dir.path().join("upstream.port");
    let ca_file = dir.path().join("ca.pem");
    let mut server = Server(
        Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .arg("--tls-ca")
            .arg(&ca_file)
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let port: u16 = wait_for_file(&port_file).trim().parse().unwrap();
    let ca = std::fs::read_to_string(&ca_file).expect("the CA is written before the port");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(
        first_line(&mut server),
        format!("listening on https://127.0.0.1:{port}")
    );
}
