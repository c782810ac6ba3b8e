//! Helpers shared by the integration tests: a raw HTTP/1.1 client over
//! `std::net::TcpStream`, for what reqwest hides (stalls, resets, connection reuse).

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Installs rustls' ring crypto provider once. In a workspace build, reqwest's features are
/// unified with strata-store's `rustls-no-provider`, and any client built without a provider
/// installed panics; plain-HTTP tests need one installed all the same.
pub fn tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client (with the provider installed).
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("a plain HTTP client builds")
}

/// A reqwest client builder (with the provider installed).
pub fn client_builder() -> reqwest::ClientBuilder {
    tls_provider();
    reqwest::Client::builder()
}

/// `reqwest::get` with the provider installed.
pub async fn get(url: String) -> reqwest::Result<reqwest::Response> {
    client().get(url).send().await
}

/// `reqwest::blocking::get` with the provider installed.
pub fn blocking_get(url: String) -> reqwest::Result<reqwest::blocking::Response> {
    tls_provider();
    reqwest::blocking::get(url)
}

/// Deterministic test content: `len` bytes that are not all alike.
pub fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// One raw connection to the upstream.
pub struct Raw {
    reader: BufReader<TcpStream>,
}

/// The status line and headers of a response.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> u64 {
        self.header("content-length")
            .expect("a Content-Length header")
            .parse()
            .expect("a numeric Content-Length")
    }
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the upstream");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            reader: BufReader::new(stream),
        }
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.reader.get_ref().set_read_timeout(Some(d)).unwrap();
    }

    /// Sends `METHOD path HTTP/1.1` with the given extra header lines.
    pub fn send(&mut self, method: &str, path: &str, extra: &[&str]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for h in extra {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        self.reader
            .get_mut()
            .write_all(req.as_bytes())
            .expect("send request");
    }

    /// Reads a status line and headers.
    pub fn read_head(&mut self) -> io::Result<Head> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Head { status, headers })
    }

    /// Reads exactly `n` body bytes.
    pub fn read_body(&mut self, n: u64) -> io::Result<Vec<u8>> {
        let mut body = vec![0; n as usize];
        self.reader.read_exact(&mut body)?;
        Ok(body)
    }

    /// Reads until EOF or an error; returns the bytes read and how it ended.
    pub fn read_to_end(&mut self) -> (Vec<u8>, io::Result<()>) {
        let mut body = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return (body, Ok(())),
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e) => return (body, Err(e)),
            }
        }
    }

    /// A complete request/response with a Content-Length body.
    pub fn get(&mut self, path: &str, extra: &[&str]) -> (Head, Vec<u8>) {
        self.send("GET", path, extra);
        let head = self.read_head().expect("response head");
        let body = self
            .read_body(head.content_length())
            .expect("response body");
        (head, body)
    }
}
