//! Progress display for downloads: a bar on a terminal, sparse plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_lock::Artifact;
use strata_store::{Failure, Progress};

/// How often the plain (non-terminal) display prints a status line.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// Shows how many artifacts are done and how many bytes arrived.
pub struct FetchProgress {
    bar: Option<ProgressBar>,
    total: u64,
    done: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
    plain: bool,
}

impl FetchProgress {
    /// A display for `total` artifacts: a bar when stderr is a terminal and `show` is set,
    /// periodic lines when `show` is set but stderr is not a terminal, nothing otherwise.
    pub fn new(total: u64, show: bool) -> FetchProgress {
        let tty = std::io::stderr().is_terminal();
        let bar = (show && tty && !quiet()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} artifacts  {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        FetchProgress {
            bar,
            total,
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            plain: show && !tty,
        }
    }

    /// One artifact is finished (from the cache or downloaded, or failed).
    pub fn artifact_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
        self.maybe_print_line();
    }

    /// Prints a message without tearing the bar.
    pub fn println(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn maybe_print_line(&self) {
        if !self.plain {
            return;
        }
        let mut last = self
            .last_line
            .lock()
            .expect("never poisoned: no panics while held");
        if last.elapsed() >= PLAIN_INTERVAL {
            *last = Instant::now();
            eprintln!(
                "fetching: {}/{} artifacts, {} downloaded in {:.1}s",
                self.done.load(Ordering::Relaxed),
                self.total,
                HumanBytes(self.bytes.load(Ordering::Relaxed)),
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Progress for FetchProgress {
    fn advanced(&self, _artifact: &Artifact, bytes: u64) {
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &self.bar {
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{} ({}/s)",
                HumanBytes(total),
                HumanBytes((total as f64 / secs) as u64)
            ));
        }
    }

    fn restarted(&self, _artifact: &Artifact, discarded: u64) {
        self.bytes.fetch_sub(discarded, Ordering::Relaxed);
    }

    fn retrying(&self, artifact: &Artifact, url: &str, failure: &Failure, delay: Duration) {
        self.println(&format!(
            "warning: {}: {failure} from {url}; retrying in {:.1}s",
            strata_store::label(artifact),
            delay.as_secs_f64()
        ));
    }
}

/// Set by `-q`: commands print only errors (no progress bars, no summary lines on stderr).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records `-q` for the whole process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}
