//! Split downloads: one artifact of known size fetched as several `Range` requests at once,
//! each on its own connection, written at its offset into the pending store entry. Where
//! every connection is limited (a long or shaped link), a caller blocked on the file waits
//! for one part's transfer instead of the whole file's. The parts are verified together:
//! the entry is hashed from its start once every part is in (see
//! [`PendingEntry::adopt_written`]).
//!
//! Each part retries on its own, resuming where its bytes stopped. A server that answers a
//! `Range` request with the whole file cannot serve parts: [`Failure::NoRanges`] tells the
//! caller to fall back to one stream.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};

use super::{Failure, FetchOptions, Fetcher, backoff, retry_after, transport};
use crate::store::PendingEntry;

/// How many parts a download of `size` bytes is split into (1: not split).
pub(super) fn segment_count(options: &FetchOptions, size: Option<u64>) -> usize {
    let Some(size) = size else { return 1 };
    let by_size = size / options.segment_min.max(1);
    usize::try_from(by_size)
        .unwrap_or(usize::MAX)
        .clamp(1, options.segments.max(1))
}

/// `parts` contiguous byte ranges `[start, end)` covering `0..size`, as equal as can be.
pub(super) fn split(size: u64, parts: usize) -> Vec<(u64, u64)> {
    let parts = (parts.max(1) as u64).min(size.max(1));
    (0..parts)
        .map(|i| (size * i / parts, size * (i + 1) / parts))
        .collect()
}

impl Fetcher {
    /// Downloads `url` as `parts` ranges into `entry`, then adopts and hashes them.
    pub(super) async fn download_segments(
        &self,
        url: &str,
        shown: &str,
        entry: &mut PendingEntry,
        size: u64,
        parts: usize,
    ) -> Result<(), Failure> {
        let file = entry.part_writer()?;
        let ranges = split(size, parts);
        let tasks = ranges
            .iter()
            .map(|&(start, end)| self.fetch_part(url, shown, &file, (start, end), size));
        futures_util::future::try_join_all(tasks).await?;
        entry.adopt_written(size)?;
        Ok(())
    }

    /// One part, `[start, end)` of a file of `size` bytes, retried and resumed like a whole
    /// download.
    async fn fetch_part(
        &self,
        url: &str,
        shown: &str,
        file: &File,
        (start, end): (u64, u64),
        size: u64,
    ) -> Result<(), Failure> {
        let mut at = start;
        let mut attempt = 0;
        loop {
            let outcome = self.part_attempt(url, file, (&mut at, end), size).await;
            let (failure, server_delay) = match outcome {
                Ok(()) => return Ok(()),
                Err((failure, _)) if !failure.is_transient() || attempt >= self.options.retries => {
                    return Err(failure);
                }
                Err(retry) => retry,
            };
            let delay = server_delay.unwrap_or_else(|| backoff(&self.options, attempt));
            tracing::info!(url = %shown, part = %format!("{start}-{end}"), attempt = attempt + 1,
                ?delay, "retrying a part after {failure}");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One request for `[*at, end)`; `*at` advances with every byte written.
    async fn part_attempt(
        &self,
        url: &str,
        file: &File,
        (at, end): (&mut u64, u64),
        size: u64,
    ) -> Result<(), (Failure, Option<Duration>)> {
        let plain = |f: Failure| (f, None);
        let request = self
            .request(url)
            .map_err(plain)?
            .header(RANGE, format!("bytes={}-{}", *at, end - 1));
        let response = request.send().await.map_err(|e| plain(transport(e)))?;
        let status = response.status();
        // A whole file, or a range past its end (the locked size is wrong): one stream
        // instead, which reports what is wrong with the bytes.
        if status == StatusCode::OK || status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Err(plain(Failure::NoRanges));
        }
        if !status.is_success() {
            let delay = retry_after(&response, &self.options);
            return Err((Failure::Status(status), delay));
        }
        // Another range than asked for, or a file of another size than the lockfile's: one
        // stream instead (which names a wrong size as such).
        if content_range(&response) != Some((*at, size)) {
            return Err(plain(Failure::NoRanges));
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| plain(transport(e)))?;
            if *at + chunk.len() as u64 > end {
                return Err(plain(Failure::Transport(format!(
                    "the server sent more than the {} bytes asked for",
                    end - *at
                ))));
            }
            file.write_all_at(&chunk, *at)
                .map_err(|e| plain(Failure::Transport(format!("could not write a part: {e}"))))?;
            *at += chunk.len() as u64;
        }
        if *at < end {
            return Err(plain(Failure::Transport(format!(
                "the part ended {} bytes early",
                end - *at
            ))));
        }
        Ok(())
    }
}

/// The first byte and the file's total size from a 206 response's `Content-Range`
/// (`bytes START-END/TOTAL`).
fn content_range(response: &reqwest::Response) -> Option<(u64, u64)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    parse_content_range(value)
}

fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.parse().ok()?;
    Some((start, total.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_file_in_equal_parts() {
        assert_eq!(split(10, 3), vec![(0, 3), (3, 6), (6, 10)]);
        assert_eq!(split(4, 8), vec![(0, 1), (1, 2), (2, 3), (3, 4)]);
        assert_eq!(split(0, 4), vec![(0, 0)]);
        for (size, parts) in [(1_000_003, 4), (7, 7), (128 * 1024, 2)] {
            let r = split(size, parts);
            assert_eq!(r.first().unwrap().0, 0);
            assert_eq!(r.last().unwrap().1, size);
            assert!(r.windows(2).all(|w| w[0].1 == w[1].0));
        }
    }

    #[test]
    fn content_ranges_are_parsed_strictly() {
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, 10)));
        assert_eq!(parse_content_range("bytes 5-9/*"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("5-9/10"), None);
    }

    #[test]
    fn only_sized_files_of_at_least_two_minimum_parts_are_split() {
        let o = FetchOptions {
            segments: 4,
            segment_min: 100,
            ..FetchOptions::default()
        };
        assert_eq!(segment_count(&o, None), 1);
        assert_eq!(segment_count(&o, Some(199)), 1);
        assert_eq!(segment_count(&o, Some(200)), 2);
        assert_eq!(segment_count(&o, Some(10_000)), 4);
        let off = FetchOptions::default();
        assert_eq!(segment_count(&off, Some(1 << 30)), 1);
    }
}
