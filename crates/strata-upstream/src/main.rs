//! `strata-upstream`: serve a directory over loopback HTTP with latency, a rate limit
//! and injected faults, for strata's benchmarks, out-of-process tests and README example.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use strata_upstream::{Fault, UpstreamBuilder, parse_bytes};

/// Serve a directory over loopback HTTP/1.1 with latency, a rate limit and injected
/// faults (test and benchmark infrastructure for strata; not part of strata itself).
///
/// Supports keep-alive, HEAD and single byte ranges. Counters are at
/// GET /_upstream/stats (JSON) and are zeroed by POST /_upstream/reset.
/// Runs until SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(
    name = "strata-upstream",
    version,
    after_help = "\
FAULT SPECS (--fault PATH=SPEC, PATH is the URL path, e.g. deps/a-1.0.tgz):
  wrong-bytes             same length, every byte flipped
  status:CODE[:TIMES]     answer CODE to the first TIMES GETs (default: all)
  stall:BYTES[:TIMES]     send BYTES of the body, then hang with the connection open
  reset:BYTES[:TIMES]     send BYTES of the body, then reset the connection (TCP RST)
  truncate:BYTES          full Content-Length, but close after BYTES
  slow:RATE               throttle this path's bodies to RATE (e.g. 64KiB)

EXAMPLE:
  strata-upstream --root ./mirror --latency-ms 50 --rate 20MB \\
      --fault deps/a-1.0.tgz=status:503:2 --port-file /tmp/upstream.port"
)]
struct Args {
    /// Directory to serve: URL path /a/b.whl is DIR/a/b.whl (repeat to layer several
    /// trees; the first that has a path wins). Files are streamed, any size works.
    #[arg(long, value_name = "DIR", required = true)]
    root: Vec<PathBuf>,

    /// Address to listen on; port 0 picks a free port (see --port-file).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0")]
    addr: SocketAddr,

    /// Delay before the response headers of every request, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    latency_ms: u64,

    /// Cap body throughput per connection: 20MB (decimal), 512KiB (binary) or plain
    /// bytes per second.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    rate: Option<u64>,

    /// Inject a fault on a URL path (repeatable); SPEC syntax below.
    #[arg(long = "fault", value_name = "PATH=SPEC", value_parser = parse_fault)]
    faults: Vec<(String, Fault)>,

    /// Once listening, write the port number to FILE (atomically: temp file + rename),
    /// so scripts can wait for the file and read the port.
    #[arg(long, value_name = "FILE")]
    port_file: Option<PathBuf>,

    /// Serve HTTPS with a certificate authority made for this run, and write that CA's
    /// certificate (PEM) to FILE before the port is announced: clients trust it with
    /// e.g. SSL_CERT_FILE=FILE.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// Log one line per request to standard error.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_rate(s: &str) -> Result<u64, String> {
    match parse_bytes(s)? {
        0 => Err("the rate must be above zero".into()),
        n => Ok(n),
    }
}

fn parse_fault(s: &str) -> Result<(String, Fault), String> {
    let (path, spec) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}`: expected PATH=SPEC, e.g. deps/a.tgz=status:503:2"))?;
    if path.trim_matches('/').is_empty() {
        return Err(format!("`{s}`: the URL path is empty"));
    }
    let fault = spec.parse::<Fault>().map_err(|e| e.to_string())?;
    Ok((path.to_owned(), fault))
}

/// Writes `text` to `file` atomically (temp file + rename).
fn write_atomically(file: &Path, text: &str) -> std::io::Result<()> {
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::other("the port file has no file name"))?;
    let mut tmp_name = name.to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = file.with_file_name(tmp_name);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    for root in &args.root {
        if !root.is_dir() {
            eprintln!(
                "strata-upstream: --root {}: not a directory",
                root.display()
            );
            return ExitCode::from(2);
        }
    }

    let mut builder = UpstreamBuilder::new()
        .addr(args.addr)
        .latency(Duration::from_millis(args.latency_ms))
        .log_requests(args.verbose)
        .tls(args.tls_ca.is_some());
    for root in &args.root {
        builder = builder.dir(root);
    }
    if let Some(rate) = args.rate {
        builder = builder.rate_limit(rate);
    }
    for (path, fault) in args.faults {
        builder = builder.fault(&path, fault);
    }

    // Signal handlers go in before we announce the port, so a script that reads the
    // port and immediately sends SIGTERM still gets a clean shutdown.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata-upstream: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signals = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    });
    let (mut term, mut int) = match signals {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strata-upstream: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };

    let upstream = match builder.start() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("strata-upstream: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = upstream.addr();
    if let (Some(file), Some(pem)) = (&args.tls_ca, upstream.ca_pem())
        && let Err(e) = write_atomically(file, pem)
    {
        eprintln!(
            "strata-upstream: cannot write the CA certificate {}: {e}",
            file.display()
        );
        return ExitCode::FAILURE;
    }
    println!("listening on {}", upstream.origin());
    let _ = std::io::stdout().flush();
    if let Some(file) = &args.port_file
        && let Err(e) = write_atomically(file, &format!("{}\n", addr.port()))
    {
        eprintln!(
            "strata-upstream: cannot write the port file {}: {e}",
            file.display()
        );
        return ExitCode::FAILURE;
    }

    runtime.block_on(async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
    drop(upstream);
    ExitCode::SUCCESS
}
