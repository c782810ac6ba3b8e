//! Lockfiles with tens of thousands of entries parse completely, with right line numbers.
//! (Parsing was once quadratic in the entry count; this keeps every format honest at scale.
//! It asserts results, never times; the elapsed time is printed for the curious.)

use std::path::Path;
use std::time::Instant;

use strata_lock::{Filter, parse};

const N: usize = 20_000;

fn hex(i: usize) -> String {
    format!("{i:064x}")
}

fn check(name: &str, text: &str, first_line: usize, lines_per_entry: usize) {
    let start = Instant::now();
    let artifacts = parse(Path::new(name), text, &Filter::default()).unwrap();
    eprintln!(
        "{name}: {} entries in {:?}",
        artifacts.len(),
        start.elapsed()
    );
    assert_eq!(artifacts.len(), N, "{name}");
    for (i, a) in artifacts.iter().enumerate().step_by(997) {
        assert_eq!(
            a.origin.line,
            Some(first_line + i * lines_per_entry),
            "{name} entry {i}"
        );
    }
}

#[test]
fn artifacts_lock_yaml() {
    let mut text = String::from("metadata:\n  version: \"1.0\"\nartifacts:\n");
    for i in 0..N {
        text.push_str(&format!(
            "  - download_url: http://127.0.0.1:1/g/f{i}.bin\n    checksum: sha256:{}\n",
            hex(i)
        ));
    }
    check("artifacts.lock.yaml", &text, 4, 2);
}

#[test]
fn rpms_lock_yaml() {
    let mut text = String::from(
        "lockfileVersion: 1\nlockfileVendor: redhat\narches:\n- arch: x86_64\n  packages:\n",
    );
    for i in 0..N {
        text.push_str(&format!(
            "  - url: http://127.0.0.1:1/r/p{i}-1-1.noarch.rpm\n    repoid: r\n    size: 10\n    checksum: sha256:{}\n    name: p{i}\n    evr: 1-1\n    sourcerpm: p{i}-1-1.src.rpm\n",
            hex(i)
        ));
    }
    check("rpms.lock.yaml", &text, 6, 7);
}

#[test]
fn package_lock_json() {
    let mut text = String::from("{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"\": {},\n");
    for i in 0..N {
        let sep = if i + 1 == N { "" } else { "," };
        text.push_str(&format!(
            "    \"node_modules/p{i}\": {{\n      \"version\": \"1.0.0\",\n      \"resolved\": \"http://127.0.0.1:1/p{i}/-/p{i}-1.0.0.tgz\",\n      \"integrity\": \"sha256-{}\"\n    }}{sep}\n",
            base64_of(i)
        ));
    }
    text.push_str("  }\n}\n");
    check("package-lock.json", &text, 5, 5);
}

#[test]
fn pylock_toml() {
    let mut text = String::from("lock-version = \"1.0\"\ncreated-by = \"t\"\n");
    for i in 0..N {
        text.push_str(&format!(
            "[[packages]]\nname = \"p{i}\"\nversion = \"1\"\nwheels = [{{ url = \"http://127.0.0.1:1/p{i}-1-py3-none-any.whl\", hashes = {{ sha256 = \"{}\" }} }}]\n",
            hex(i)
        ));
    }
    check("pylock.toml", &text, 6, 4);
}

/// The standard base64 of a 32-byte value derived from `i` (a valid sha256 SRI body).
fn base64_of(i: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 33];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
        }
    }
    out.truncate(43);
    out.push('=');
    out
}
