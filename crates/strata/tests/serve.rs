//! `strata serve` with real clients: pip, uv and npm through the HTTP index, libnfs tools
//! through NFS, and the remote tier against a real docker-registry.
//!
//! Tests needing a tool that is missing print SKIP, or fail when STRATA_TEST_REQUIRE_ALL=1
//! (`scripts/setup-debian.sh test` installs them all).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{payload, run, sha256_hex, sha512_sri, strata};
use strata_upstream::{Upstream, UpstreamBuilder};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Whether `tool` runs; SKIP (or a failure under STRATA_TEST_REQUIRE_ALL=1) when it does not.
fn require(tool: &str, args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok || missing_tool(tool)
}

/// Whether `tool` can be started at all (whatever it exits with), else as [`require`].
fn require_present(tool: &str) -> bool {
    let started = Command::new(tool)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    started || missing_tool(tool)
}

/// Reports a missing tool through [`missing`]; always `false`.
fn missing_tool(tool: &str) -> bool {
    missing(&format!(
        "`{tool}` is not available (scripts/setup-debian.sh test installs it)"
    ));
    false
}

/// A `strata serve` process, killed on drop.
struct Server {
    child: Child,
    http: Option<String>,
    nfs_port: Option<u16>,
}

impl Server {
    fn start(cache: &Path, extra: &[&str], lockfiles: &[&Path]) -> Server {
        let mut cmd = strata();
        cmd.arg("serve")
            .arg("--cache-dir")
            .arg(cache)
            .args(extra)
            .args(lockfiles)
            .env("STRATA_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("strata serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let want_http = extra.contains(&"--http") || !extra.contains(&"--nfs");
        let want_nfs = extra.contains(&"--nfs");
        let (mut http, mut nfs_port) = (None, None);
        while (want_http && http.is_none()) || (want_nfs && nfs_port.is_none()) {
            let line = lines
                .next()
                .expect("strata serve announces its addresses")
                .unwrap();
            if let Some(url) = line.strip_prefix("http ") {
                http = Some(url.trim_end_matches('/').to_owned());
            } else if let Some(addr) = line.strip_prefix("nfs ") {
                nfs_port = Some(addr.rsplit(':').next().unwrap().parse().unwrap());
            }
        }
        Server {
            child,
            http,
            nfs_port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http.as_ref().unwrap())
    }

    fn addr(&self) -> String {
        self.http
            .as_ref()
            .unwrap()
            .trim_start_matches("http://")
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET (Connection: close): status, headers (lower-case names), body.
fn http_get(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 2 + n + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Builds pure-Python wheels with Python's zipfile: `name` → (file name, bytes).
/// `deps` are `Requires-Dist` lines.
fn make_wheel(dir: &Path, name: &str, version: &str, deps: &[&str]) -> (String, Vec<u8>) {
    let script = r#"
import base64, hashlib, sys, zipfile
out, name, version = sys.argv[1], sys.argv[2], sys.argv[3]
deps = sys.argv[4:]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f"VERSION = {version!r}\n",
    f"{dist}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (name, version, "".join(f"Requires-Dist: {d}\n" for d in deps)),
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: strata-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile(out, "w") as z:
    for path, text in files.items():
        data = text.encode()
        info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
        z.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    z.writestr(zipfile.ZipInfo(f"{dist}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
"#;
    let file = format!("{name}-{version}-py3-none-any.whl");
    let path = dir.join(&file);
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .arg(name)
        .arg(version)
        .args(deps)
        .status()
        .expect("python3 runs");
    assert!(status.success());
    (file, std::fs::read(&path).unwrap())
}

/// A pylock.toml for `wheels` served by `up` at `pypi/<file>`.
fn write_pylock(dir: &Path, up: &Upstream, wheels: &[(&str, &str, String, Vec<u8>)]) -> PathBuf {
    let mut text = String::from("lock-version = \"1.0\"\ncreated-by = \"strata-tests\"\n");
    for (name, version, file, bytes) in wheels {
        text.push_str(&format!(
            "\n[[packages]]\nname = \"{name}\"\nversion = \"{version}\"\nwheels = [{{ url = \"{}\", size = {}, hashes = {{ sha256 = \"{}\" }} }}]\n",
            up.url(&format!("pypi/{file}")),
            bytes.len(),
            sha256_hex(bytes)
        ));
    }
    let path = dir.join("pylock.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct PipFixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    up: Upstream,
    pylock: PathBuf,
    wheels: Vec<(String, Vec<u8>)>,
}

/// Wheels `Alpha_Pkg` (needs beta-pkg) and `beta.pkg`, spelled unnormalised on purpose.
fn pip_fixture() -> PipFixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let build = dir.join("wheels");
    std::fs::create_dir_all(&build).unwrap();
    let (fa, ba) = make_wheel(&build, "alpha_pkg", "1.0", &["beta.pkg>=2"]);
    let (fb, bb) = make_wheel(&build, "beta_pkg", "2.1", &[]);
    let up = UpstreamBuilder::new()
        .file(&format!("pypi/{fa}"), ba.clone())
        .file(&format!("pypi/{fb}"), bb.clone())
        .latency(Duration::from_millis(20))
        .start()
        .unwrap();
    let pylock = write_pylock(
        &dir,
        &up,
        &[
            ("Alpha_Pkg", "1.0", fa.clone(), ba.clone()),
            ("beta.pkg", "2.1", fb.clone(), bb.clone()),
        ],
    );
    PipFixture {
        _tmp: tmp,
        dir,
        up,
        pylock,
        wheels: vec![(fa, ba), (fb, bb)],
    }
}

fn installed(target: &Path, module: &str) -> bool {
    target.join(module).join("__init__.py").is_file()
}

// ---------------------------------------------------------------------------------------------
// HTTP: pip, uv, the index formats, the tree

#[test]
fn pip_installs_through_the_index_and_nothing_unlocked_is_served() {
    if !require("python3", &["-m", "pip", "--version"]) {
        return;
    }
    let f = pip_fixture();
    let cache = f.dir.join("cache");
    let server = Server::start(&cache, &["--http", "127.0.0.1:0"], &[&f.pylock]);

    // Nothing is downloaded before a client asks.
    let (status, _, _) = http_get(&server.addr(), "/simple/", &[]);
    assert_eq!(status, 200);
    assert_eq!(f.up.stats().total_requests, 0);

    let target = f.dir.join("site");
    let out = run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
            "--index-url",
            &server.url("/simple"),
            "--target",
        ])
        .arg(&target)
        .arg("ALPHA-PKG"));
    assert!(out.status.success(), "pip install failed");
    assert!(installed(&target, "alpha_pkg") && installed(&target, "beta_pkg"));
    for (file, _) in &f.wheels {
        assert_eq!(f.up.requests(&format!("pypi/{file}")), 1, "{file}");
    }

    // A project that is not locked: pip fails, and the server says why.
    let out = run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            &server.url("/simple"),
            "--target",
        ])
        .arg(f.dir.join("site2"))
        .arg("requests"));
    assert!(!out.status.success());
    let (status, _, body) = http_get(&server.addr(), "/simple/requests/", &[]);
    assert_eq!(status, 404);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("`requests` is not locked"), "{body}");
    let (status, _, body) = http_get(
        &server.addr(),
        "/tree/deps/pip/requests-2.0-py3-none-any.whl",
        &[],
    );
    assert_eq!(status, 404);
    assert!(String::from_utf8(body).unwrap().contains("is not locked"));
}

#[test]
fn index_formats_tree_and_range() {
    let f = pip_fixture();
    let server = Server::start(
        &f.dir.join("cache"),
        &["--http", "127.0.0.1:0", "--prefix", "/files"],
        &[&f.pylock],
    );
    let addr = server.addr();
    let (fa, ba) = &f.wheels[0];

    // PEP 691 JSON by Accept; the name in any spelling.
    let (status, headers, body) = http_get(
        &addr,
        "/simple/alpha-pkg/",
        &[(
            "Accept",
            "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
        )],
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/vnd.pypi.simple.v1+json")
    );
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["name"], "alpha-pkg");
    assert_eq!(doc["files"][0]["filename"], fa.as_str());
    assert_eq!(doc["files"][0]["hashes"]["sha256"], sha256_hex(ba));
    assert_eq!(doc["files"][0]["url"], format!("/files/deps/pip/{fa}"));

    // PEP 503 HTML, redirect to the trailing slash.
    let (status, headers, _) = http_get(&addr, "/simple/Alpha_Pkg", &[]);
    assert_eq!(status, 301);
    assert_eq!(header(&headers, "location"), Some("/simple/Alpha_Pkg/"));
    let (status, _, body) = http_get(&addr, "/simple/Alpha_Pkg/", &[("Accept", "text/html")]);
    assert_eq!(status, 200);
    let html = String::from_utf8(body).unwrap();
    assert!(
        html.contains(&format!("/files/deps/pip/{fa}#sha256={}", sha256_hex(ba))),
        "{html}"
    );
    let (status, _, _) = http_get(&addr, "/simple/", &[("Accept", "application/xml")]);
    assert_eq!(status, 406);

    // The tree: listings, generated files, Range.
    let (status, _, body) = http_get(&addr, "/files/deps/pip/", &[]);
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains(&format!("href=\"{fa}\""))
    );
    let (status, _, body) = http_get(&addr, "/files/bom.json", &[]);
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
    let path = format!("/files/deps/pip/{fa}");
    let (status, headers, body) = http_get(&addr, &path, &[("Range", "bytes=10-19")]);
    assert_eq!(status, 206);
    assert_eq!(body, &ba[10..20]);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes 10-19/{}", ba.len()).as_str())
    );
    let (status, _, body) = http_get(&addr, &path, &[("Range", "bytes=-5")]);
    assert_eq!((status, body.as_slice()), (206, &ba[ba.len() - 5..]));
    let (status, _, _) = http_get(&addr, &path, &[("Range", &format!("bytes={}-", ba.len()))]);
    assert_eq!(status, 416);
    let (status, _, body) = http_get(&addr, &path, &[]);
    assert_eq!((status, &body), (200, ba));
    assert_eq!(
        f.up.requests(&format!("pypi/{fa}")),
        1,
        "downloaded once, served from the store after"
    );
    let (status, _, body) = http_get(&addr, "/_strata/stats", &[]);
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["downloaded"], 1);
}

#[test]
fn concurrent_requests_download_once() {
    let tmp = tempfile::tempdir().unwrap();
    let big = payload(4 << 20, 7);
    let up = UpstreamBuilder::new()
        .file("pypi/big-1.0-py3-none-any.whl", big.clone())
        .latency(Duration::from_millis(100))
        .rate_limit(16 << 20)
        .start()
        .unwrap();
    let pylock = write_pylock(
        tmp.path(),
        &up,
        &[("big", "1.0", "big-1.0-py3-none-any.whl".into(), big.clone())],
    );
    let server = Server::start(
        &tmp.path().join("cache"),
        &["--http", "127.0.0.1:0"],
        &[&pylock],
    );
    let addr = server.addr();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                http_get(&addr, "/tree/deps/pip/big-1.0-py3-none-any.whl", &[])
            })
        })
        .collect();
    for t in threads {
        let (status, _, body) = t.join().unwrap();
        assert_eq!(status, 200);
        assert!(body == big, "every client gets the verified bytes");
    }
    assert_eq!(up.requests("pypi/big-1.0-py3-none-any.whl"), 1);
}

/// A raw GET that tolerates an aborted response: status, declared length, body so far, and
/// when the first body byte arrived.
fn raw_get(addr: &str, path: &str) -> (u16, Option<usize>, Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut raw = Vec::new();
    let mut first_body = None;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if first_body.is_none()
            && let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n")
            && raw.len() > split + 4
        {
            first_body = Some(started.elapsed());
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().unwrap());
    (status, length, raw[split + 4..].to_vec(), first_body)
}

#[test]
fn a_cold_file_streams_during_the_download_and_wrong_bytes_never_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let good = payload(3 << 20, 11);
    let bad = payload(3 << 20, 12);
    // 1.5 MiB/s: each download takes about two seconds.
    let up = UpstreamBuilder::new()
        .file("pypi/good-1.0-py3-none-any.whl", good.clone())
        .file("pypi/bad-1.0-py3-none-any.whl", bad.clone())
        .fault(
            "pypi/bad-1.0-py3-none-any.whl",
            strata_upstream::Fault::WrongBytes,
        )
        .rate_limit(3 << 19)
        .start()
        .unwrap();
    let pylock = write_pylock(
        tmp.path(),
        &up,
        &[
            (
                "good",
                "1.0",
                "good-1.0-py3-none-any.whl".into(),
                good.clone(),
            ),
            ("bad", "1.0", "bad-1.0-py3-none-any.whl".into(), bad.clone()),
        ],
    );
    let cache = tmp.path().join("cache");
    let server = Server::start(&cache, &["--http", "127.0.0.1:0"], &[&pylock]);
    let addr = server.addr();

    let started = Instant::now();
    let (status, length, body, first) = raw_get(&addr, "/tree/deps/pip/good-1.0-py3-none-any.whl");
    let total = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(length, Some(good.len()));
    assert!(body == good, "the streamed body is the verified file");
    let first = first.expect("a body arrived");
    assert!(
        first * 3 < total,
        "the first bytes came at {first:?}, not long before the end ({total:?})"
    );

    // Wrong bytes: the client may get a prefix, never a complete 200.
    let (status, length, body, _) = raw_get(&addr, "/tree/deps/pip/bad-1.0-py3-none-any.whl");
    assert!(
        status != 200 || length.is_some_and(|l| body.len() < l),
        "a wrong file must not arrive complete: status {status}, {} of {length:?} bytes",
        body.len()
    );
    let wrong: Vec<u8> = bad.iter().map(|b| b ^ 0xFF).collect();
    assert!(body != wrong);
    assert!(
        !cache
            .join("v1/objects/sha256")
            .join(&sha256_hex(&bad)[..2])
            .join(sha256_hex(&bad))
            .exists(),
        "nothing unverified in the store"
    );
    // Asked again (the fault still on), the answer is an error, not the bytes.
    let (status, length, body, _) = raw_get(&addr, "/tree/deps/pip/bad-1.0-py3-none-any.whl");
    assert!(status != 200 || length.is_some_and(|l| body.len() < l));
}

/// Skips (or, with `STRATA_TEST_REQUIRE_ALL=1`, fails) a test that lacks `what`.
fn missing(what: &str) {
    if std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{what} (required: STRATA_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("SKIP: {what}");
}

/// The Docker base image with python3 and pip that the build test uses.
const PYTHON_IMAGE: &str = "strata-test/debian-python3:bookworm";

/// Makes [`PYTHON_IMAGE`] present: imported from a rootfs tarball (`$STRATA_TEST_PYTHON_ROOTFS`,
/// else `scripts/debian-base.sh python3,python3-pip`, which debootstraps it once from the
/// mirror in this machine's apt configuration and caches it).
fn python_image(host: &str) -> Result<(), String> {
    let docker = |args: &[&str]| {
        Command::new("/usr/bin/docker")
            .args(args)
            .env("DOCKER_HOST", host)
            .output()
            .map_err(|e| format!("docker: {e}"))
    };
    if docker(&["image", "inspect", PYTHON_IMAGE])?
        .status
        .success()
    {
        return Ok(());
    }
    let tar = python_rootfs()?;
    let out = docker(&["import", tar.to_str().unwrap(), PYTHON_IMAGE])?;
    if !out.status.success() {
        return Err(format!(
            "docker import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A Debian rootfs tarball with python3 and pip: `$STRATA_TEST_PYTHON_ROOTFS`, else
/// [`debian_python_rootfs`].
fn python_rootfs() -> Result<PathBuf, String> {
    match std::env::var("STRATA_TEST_PYTHON_ROOTFS") {
        Ok(path) => Ok(PathBuf::from(path)),
        Err(_) => debian_python_rootfs(),
    }
}

/// Containerfile steps that pip-install the fixture's `Alpha_Pkg` (and its dependency) from
/// `index`, then check that an unlocked name (`requests`) cannot be installed from it.
fn pip_install_steps(index: &str) -> String {
    format!(
        "RUN python3 -m pip install --no-cache-dir --disable-pip-version-check \
         --break-system-packages --index-url {index} --target /opt/site Alpha_Pkg \
         && test -f /opt/site/alpha_pkg/__init__.py && test -f /opt/site/beta_pkg/__init__.py\n\
         RUN ! python3 -m pip install --no-cache-dir --disable-pip-version-check \
         --break-system-packages --index-url {index} --target /opt/other requests\n"
    )
}

/// After a build ran [`pip_install_steps`]: each wheel came from the upstream once, and the
/// server refused at least one name that is not locked.
fn assert_installed_once_and_refused(f: &PipFixture, server: &Server) {
    for (file, _) in &f.wheels {
        assert_eq!(f.up.requests(&format!("pypi/{file}")), 1, "{file}");
    }
    let (_, _, stats) = http_get(&server.addr(), "/_strata/stats", &[]);
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert!(stats["not_locked"].as_u64().unwrap() >= 1, "{stats}");
}

/// The cached Debian rootfs tarball with python3 and pip, made by `scripts/debian-base.sh`.
fn debian_python_rootfs() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/debian-base.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("python3,python3-pip")
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
fn a_docker_build_installs_through_the_http_index() {
    let Some(host) = std::env::var("STRATA_DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty() && Path::new("/usr/bin/docker").exists())
    else {
        return missing(
            "no Docker engine: STRATA_DOCKER_HOST is not set or /usr/bin/docker is missing \
             (scripts/start-dockerd.sh; scripts/test.sh sets it)",
        );
    };
    if let Err(e) = python_image(&host) {
        return missing(&format!("no {PYTHON_IMAGE} image: {e}"));
    }
    let f = pip_fixture();
    let server = Server::start(
        &f.dir.join("cache"),
        &["--http", "127.0.0.1:0"],
        &[&f.pylock],
    );
    let ctx = f.dir.join("docker-context");
    std::fs::create_dir_all(&ctx).unwrap();
    // Host networking: the build reaches strata serve on loopback (no bridge network here).
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {PYTHON_IMAGE}\n{}",
            pip_install_steps(&server.url("/simple"))
        ),
    )
    .unwrap();
    let out = Command::new("/usr/bin/docker")
        .args([
            "build",
            "--network=host",
            "--no-cache",
            "-q",
            "-t",
            "strata-serve-test:pip",
        ])
        .arg(&ctx)
        .env("DOCKER_HOST", &host)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build through strata serve failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_installed_once_and_refused(&f, &server);
}

/// buildah has no daemon and no registry here: the base is the same Debian rootfs tarball,
/// unpacked by `ADD` into a `FROM scratch` image in a throw-away storage root.
#[test]
fn a_buildah_build_installs_through_the_http_index() {
    if !require("buildah", &["--version"]) {
        return;
    }
    let rootfs = match python_rootfs() {
        Ok(path) => path,
        Err(e) => return missing(&format!("no Debian python3 rootfs: {e}")),
    };
    let f = pip_fixture();
    let server = Server::start(
        &f.dir.join("cache"),
        &["--http", "127.0.0.1:0"],
        &[&f.pylock],
    );
    let ctx = f.dir.join("buildah-context");
    std::fs::create_dir_all(&ctx).unwrap();
    if std::fs::hard_link(&rootfs, ctx.join("rootfs.tar")).is_err() {
        std::fs::copy(&rootfs, ctx.join("rootfs.tar")).unwrap();
    }
    std::fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM scratch\nADD rootfs.tar /\n{}",
            pip_install_steps(&server.url("/simple"))
        ),
    )
    .unwrap();
    let storage = f.dir.join("buildah-storage");
    // chroot isolation shares the host's network namespace: the build reaches loopback.
    let out = run(Command::new("buildah")
        .arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "bud",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--layers=false",
            "-t",
            "strata-serve-test:buildah-pip",
            "-f",
        ])
        .arg(ctx.join("Containerfile"))
        .arg(&ctx));
    assert!(
        out.status.success(),
        "buildah bud through strata serve failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_installed_once_and_refused(&f, &server);
}

#[test]
fn uv_installs_through_the_index() {
    if !require("uv", &["--version"]) {
        return;
    }
    let f = pip_fixture();
    let server = Server::start(
        &f.dir.join("cache"),
        &["--http", "127.0.0.1:0"],
        &[&f.pylock],
    );
    let target = f.dir.join("site");
    let out = run(Command::new("uv")
        .args([
            "pip",
            "install",
            "--no-cache",
            "--python",
            "python3",
            "--index-url",
            &server.url("/simple"),
            "--target",
        ])
        .arg(&target)
        .arg("alpha.pkg")
        .env("UV_NO_CONFIG", "1"));
    assert!(out.status.success(), "uv pip install failed");
    assert!(installed(&target, "alpha_pkg") && installed(&target, "beta_pkg"));
}

#[test]
fn bad_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let f = pip_fixture();
    for args in [
        vec!["--http", "nonsense"],
        vec!["--prefix", "/simple"],
        vec!["--nfs", "[::1]:0"],
    ] {
        let out = run(strata()
            .arg("serve")
            .arg("--cache-dir")
            .arg(tmp.path())
            .args(&args)
            .arg(&f.pylock));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = run(strata().arg("serve").arg(tmp.path().join("poetry.lock")));
    assert_eq!(out.status.code(), Some(2));
    let out = run(strata()
        .args(["serve", "--remote", "s3://x/y", "--cache-dir"])
        .arg(tmp.path())
        .arg(&f.pylock));
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// npm

/// Packs a tiny package with `npm pack`; returns the tarball's bytes.
fn npm_pack(dir: &Path, name: &str, version: &str, deps: serde_json::Value) -> Vec<u8> {
    let src = dir.join(format!("src-{}", name.replace('/', "-")));
    std::fs::create_dir_all(&src).unwrap();
    let manifest = serde_json::json!({
        "name": name, "version": version, "main": "index.js", "dependencies": deps,
    });
    std::fs::write(src.join("package.json"), manifest.to_string()).unwrap();
    std::fs::write(
        src.join("index.js"),
        format!("module.exports = {name:?};\n"),
    )
    .unwrap();
    let out = run(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(dir)
        .current_dir(&src));
    assert!(out.status.success(), "npm pack failed");
    let file = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    std::fs::read(dir.join(file.lines().last().unwrap())).unwrap()
}

#[test]
fn npm_ci_installs_through_the_registry_with_the_lockfile_unchanged() {
    if !require("npm", &["--version"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let left = npm_pack(
        dir,
        "leftish",
        "1.0.0",
        serde_json::json!({"@strata/rightish": "^2.0.0"}),
    );
    let right = npm_pack(dir, "@strata/rightish", "2.0.1", serde_json::json!({}));
    let up = UpstreamBuilder::new()
        .file("registry/leftish/-/leftish-1.0.0.tgz", left.clone())
        .file(
            "registry/@strata/rightish/-/rightish-2.0.1.tgz",
            right.clone(),
        )
        .start()
        .unwrap();
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"app","version":"1.0.0","dependencies":{"leftish":"^1.0.0"}}"#,
    )
    .unwrap();
    let lock = serde_json::json!({
        "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"leftish": "^1.0.0"}},
            "node_modules/leftish": {
                "version": "1.0.0",
                "resolved": up.url("registry/leftish/-/leftish-1.0.0.tgz"),
                "integrity": sha512_sri(&left),
                "dependencies": {"@strata/rightish": "^2.0.0"}
            },
            "node_modules/@strata/rightish": {
                "version": "2.0.1",
                "resolved": up.url("registry/@strata/rightish/-/rightish-2.0.1.tgz"),
                "integrity": sha512_sri(&right)
            }
        }
    });
    let lock_text = serde_json::to_string_pretty(&lock).unwrap() + "\n";
    let lockfile = app.join("package-lock.json");
    std::fs::write(&lockfile, &lock_text).unwrap();
    let server = Server::start(&dir.join("cache"), &["--http", "127.0.0.1:0"], &[&lockfile]);

    // The packument holds only the locked version, pointing back at strata.
    let (status, _, body) = http_get(&server.addr(), "/npm/@strata%2frightish", &[]);
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["versions"].as_object().unwrap().len(), 1);
    assert_eq!(
        doc["versions"]["2.0.1"]["dist"]["tarball"],
        server.url("/npm/@strata/rightish/-/rightish-2.0.1.tgz")
    );
    assert_eq!(
        doc["versions"]["2.0.1"]["dist"]["integrity"],
        sha512_sri(&right)
    );
    let (status, _, body) = http_get(&server.addr(), "/npm/left-pad", &[]);
    assert_eq!(status, 404);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("`left-pad` is not locked")
    );
    let (status, _, _) = http_get(&server.addr(), "/npm/leftish/-/leftish-9.9.9.tgz", &[]);
    assert_eq!(status, 404);

    // npm keeps the lockfile's `resolved` hosts unless told to swap them for the registry's:
    // it does so by default only for its default public registry, so this lockfile (resolved
    // against a loopback upstream) needs --replace-registry-host=always.
    let out = run(Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--replace-registry-host=always",
            "--registry",
        ])
        .arg(server.url("/npm/"))
        .arg("--cache")
        .arg(dir.join("npm-cache"))
        .current_dir(&app));
    assert!(out.status.success(), "npm ci failed");
    assert!(app.join("node_modules/leftish/index.js").is_file());
    assert!(app.join("node_modules/@strata/rightish/index.js").is_file());
    assert_eq!(
        std::fs::read_to_string(&lockfile).unwrap(),
        lock_text,
        "lockfile unchanged"
    );
    let (_, _, body) = http_get(&server.addr(), "/_strata/stats", &[]);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        stats["downloaded"], 2,
        "both tarballs went through strata: {stats}"
    );
    assert_eq!(up.requests("registry/leftish/-/leftish-1.0.0.tgz"), 1);
    assert_eq!(
        up.requests("registry/@strata/rightish/-/rightish-2.0.1.tgz"),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// NFS

fn nfs_url(port: u16, path: &str) -> String {
    // libnfs: nfsserve answers MOUNT on the NFS port and runs no portmapper.
    format!("nfs://127.0.0.1{path}?nfsport={port}&mountport={port}&version=3")
}

#[test]
fn nfs_serves_the_same_tree_lazily() {
    // libnfs tools have no --version and their usage exit codes vary: only ask whether they run.
    if !(require_present("nfs-ls") && require_present("nfs-cat")) {
        return;
    }
    let f = pip_fixture();
    let server = Server::start(
        &f.dir.join("cache"),
        &["--nfs", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        &[&f.pylock],
    );
    let port = server.nfs_port.unwrap();
    let (fa, ba) = &f.wheels[0];
    let out = run(Command::new("nfs-ls").arg(nfs_url(port, "/")));
    assert!(out.status.success(), "nfs-ls failed");
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("bom.json") && listing.contains("deps"),
        "{listing}"
    );
    let out = run(Command::new("nfs-ls").arg(nfs_url(port, "/deps/pip")));
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains(fa.as_str()), "{listing}");
    assert!(
        listing.contains(&format!("{} {fa}", ba.len())),
        "sizes from the lockfile: {listing}"
    );
    assert_eq!(f.up.stats().total_requests, 0, "listing downloads nothing");

    for _ in 0..2 {
        let out = run(Command::new("nfs-cat").arg(nfs_url(port, &format!("/deps/pip/{fa}"))));
        assert!(out.status.success(), "nfs-cat failed");
        assert!(out.stdout == *ba, "nfs-cat returns the verified bytes");
    }
    assert_eq!(f.up.requests(&format!("pypi/{fa}")), 1);
    // The HTTP side shares the store: no second download.
    let (status, _, body) = http_get(&server.addr(), &format!("/tree/deps/pip/{fa}"), &[]);
    assert_eq!((status, &body), (200, ba));
    assert_eq!(f.up.requests(&format!("pypi/{fa}")), 1);

    let out =
        run(Command::new("nfs-cat").arg(nfs_url(port, "/deps/pip/requests-2.0-py3-none-any.whl")));
    assert!(!out.status.success(), "what is not locked does not exist");
}

// ---------------------------------------------------------------------------------------------
// The remote tier against a real registry

/// Debian's docker-registry (distribution 2.8) on loopback with a temp storage dir.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path) -> Option<Registry> {
        if !require("docker-registry", &["--version"]) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("registry-data");
        std::fs::create_dir_all(&storage).unwrap();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Registry { child, port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("docker-registry did not listen on 127.0.0.1:{port}");
    }

    fn remote(&self) -> String {
        format!("oci://127.0.0.1:{}/strata/cache", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fetch_with_remote(
    dir: &Path,
    name: &str,
    remote: &str,
    lockfiles: &[PathBuf],
) -> std::process::Output {
    run(strata()
        .args([
            "fetch",
            "--format",
            "json",
            "--remote",
            remote,
            "--cache-dir",
        ])
        .arg(dir.join(format!("cache-{name}")))
        .arg("-o")
        .arg(dir.join(format!("out-{name}")))
        .args(lockfiles)
        // Small chunks, so the blobs above 4 KiB go up with chunked uploads.
        .env("STRATA_REMOTE_CHUNK_SIZE", "4K"))
}

#[test]
fn a_second_machine_fills_from_the_registry_and_a_dead_registry_only_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some(mut registry) = Registry::start(dir) else {
        return;
    };
    // Every kind: sha256 (pip, rpm, generic) and sha512-only (npm, mapped through a tag);
    // sizes on both sides of the chunk size.
    let files = common::Files::new(3, 3000);
    let mut files_big = common::Files::new(1, 20_000);
    files_big.wheels[0].0 = "big-1.0-py3-none-any.whl".into();
    let mut all = files;
    all.wheels.extend(files_big.wheels);
    let up = all.serve(UpstreamBuilder::new()).start().unwrap();
    let lockfiles = all.write_lockfiles(&dir.join("locks"), &up);

    // Machine A: cold, from the upstream; pushes everything.
    let out = fetch_with_remote(dir, "a", &registry.remote(), &lockfiles);
    assert!(out.status.success());
    assert_eq!(up.stats().total_requests as usize, all.count());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("remote tier"),
        "no registry trouble expected: {stderr}"
    );

    // Machine B: a fresh store fills from the registry; the upstream sees nothing.
    up.reset_stats();
    let out = fetch_with_remote(dir, "b", &registry.remote(), &lockfiles);
    assert!(out.status.success());
    assert_eq!(
        up.stats().total_requests,
        0,
        "everything came from the registry"
    );
    for (path, bytes) in all.expected_outputs() {
        assert!(
            std::fs::read(dir.join("out-b").join(&path)).unwrap() == bytes,
            "{path}"
        );
    }

    // Registry down: a warning, and the upstream.
    registry.stop();
    up.reset_stats();
    let out = fetch_with_remote(dir, "c", &registry.remote(), &lockfiles);
    assert!(
        out.status.success(),
        "a dead registry never fails the build"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("is unreachable").count(),
        1,
        "one warning: {stderr}"
    );
    assert_eq!(up.stats().total_requests as usize, all.count());
}
