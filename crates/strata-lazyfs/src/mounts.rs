//! Finding strata mounts in `/proc/self/mountinfo`, unmounting them, and cleaning up after
//! a daemon that died without unmounting (its mountpoint then fails with `ENOTCONN`).
//!
//! A strata mount's source is `strata:<pid>` ([`fsname`]), so the daemon serving a mount is
//! found without any state file that a crash could leave behind.
//!
//! A user without `CAP_SYS_ADMIN` mounts through the setuid `fusermount3`, and the kernel
//! refuses that user's `umount2` with `EPERM`; unmounting then goes through `fusermount3 -u`
//! (else `fusermount -u`) as libfuse does.

use std::io;
use std::path::{Component, Path, PathBuf};

/// The mount source for a daemon with process id `pid`.
pub fn fsname(pid: u32) -> String {
    format!("strata:{pid}")
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The filesystem type (`fuse`, `fuse.strata`, ...).
    pub fstype: String,
    /// The mount source (`strata:<pid>` for strata mounts).
    pub source: String,
}

impl MountEntry {
    /// The daemon's process id, if this is a strata mount.
    pub fn strata_pid(&self) -> Option<u32> {
        if !self.fstype.starts_with("fuse") {
            return None;
        }
        self.source.strip_prefix("strata:")?.parse().ok()
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            Some(MountEntry {
                mountpoint: PathBuf::from(unescape(mountpoint)),
                fstype: right.next()?.to_owned(),
                source: unescape(right.next()?),
            })
        })
        .collect()
}

/// The path `/proc/self/mountinfo` shows for a mount at `path`: absolute, without symlinks,
/// `.` or `..`. Where `path` cannot be resolved (a dead FUSE mount answers `ENOTCONN`; a
/// mountpoint still to be created does not exist), its parent is resolved and the last
/// component appended, so a stale or future mountpoint reached through a symlink is named
/// as the kernel names it too.
pub fn canonical(path: &Path) -> io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    let err = match std::fs::canonicalize(&path) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    let Some(parent) = path.parent() else {
        return Err(err);
    };
    let base = canonical(parent)?;
    Ok(match path.components().next_back() {
        Some(Component::Normal(name)) => base.join(name),
        // `base` has no symlinks, so its parent is what `..` leads to.
        Some(Component::ParentDir) => base.parent().map_or(base.clone(), Path::to_path_buf),
        _ => base,
    })
}

/// The topmost mount at `mountpoint` (resolved with [`canonical`]), if any.
pub fn find(mountpoint: &Path) -> io::Result<Option<MountEntry>> {
    let mountpoint = canonical(mountpoint)?;
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| m.mountpoint == mountpoint))
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// What [`clean_stale`] found at a mountpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing mounted there.
    None,
    /// A dead strata mount was there and has been detached.
    CleanedStale(MountEntry),
    /// A live mount is there.
    Live(MountEntry),
}

/// Detaches a strata mount at `mountpoint` (resolved with [`canonical`]) whose daemon is gone (the mountpoint answers
/// `ENOTCONN`, or the daemon's process no longer exists), so the next mount needs no manual
/// cleanup. A live mount is reported, not touched.
pub fn clean_stale(mountpoint: &Path) -> io::Result<Existing> {
    let mountpoint = &canonical(mountpoint)?;
    let Some(entry) = find(mountpoint)? else {
        return Ok(Existing::None);
    };
    let disconnected = matches!(
        std::fs::metadata(mountpoint),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN)
    );
    let dead = entry.strata_pid().is_some_and(|pid| !process_alive(pid));
    if !(disconnected || dead) {
        return Ok(Existing::Live(entry));
    }
    detach(mountpoint)?;
    Ok(Existing::CleanedStale(entry))
}

/// Unmounts `mountpoint`; when busy, detaches it lazily (it disappears from the namespace at
/// once and goes away when its last user closes it). Without the privilege to unmount (a
/// mount an unprivileged user made through `fusermount3`), `fusermount3 -u` does it.
pub fn unmount(mountpoint: &Path) -> io::Result<()> {
    match umount2(mountpoint, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => detach(mountpoint),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            fusermount_unmount(mountpoint, false).or_else(|_| fusermount_unmount(mountpoint, true))
        }
        other => other,
    }
}

/// Detaches `mountpoint` lazily (`MNT_DETACH`, else `fusermount3 -u -z`).
fn detach(mountpoint: &Path) -> io::Result<()> {
    match umount2(mountpoint, libc::MNT_DETACH) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => fusermount_unmount(mountpoint, true),
        other => other,
    }
}

/// Unmounts through the setuid helper: `fusermount3 -u`, else `fusermount -u` where only
/// FUSE 2's is installed; `lazy` adds `-z` (detach). The helper's message is the error.
fn fusermount_unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    for helper in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(helper);
        cmd.arg(if lazy { "-uz" } else { "-u" })
            .arg("--")
            .arg(mountpoint);
        let out = match cmd.stdin(std::process::Stdio::null()).output() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other?,
        };
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(io::Error::other(format!(
            "{helper} {} {}: {}",
            if lazy { "-uz" } else { "-u" },
            mountpoint.display(),
            why.trim()
        )));
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        "not allowed to unmount, and neither fusermount3 nor fusermount is installed to do it",
    ))
}

fn umount2(path: &Path, flags: libc::c_int) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,nosuid - fuse strata:4242 ro,user_id=0\n\
                    37 35 98:0 / / rw - ext4 /dev/vda rw\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].mountpoint, PathBuf::from("/mnt/a b"));
        assert_eq!(entries[0].strata_pid(), Some(4242));
        assert_eq!(entries[1].strata_pid(), None);
    }

    #[test]
    fn canonical_resolves_symlinks_and_dot_dot_even_below_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let want = real.join("mnt");
        assert_eq!(canonical(&link.join("mnt")).unwrap(), want, "missing");
        std::fs::create_dir(&want).unwrap();
        assert_eq!(canonical(&link.join("mnt")).unwrap(), want, "present");
        let dotdot = link.join("gone/../mnt");
        assert_eq!(
            canonical(&dotdot).unwrap(),
            want,
            "`..` after a missing dir"
        );
        let up = dir.path().join("link/mnt/../mnt");
        assert_eq!(canonical(&up).unwrap(), want);
    }

    #[test]
    fn nothing_is_mounted_on_a_fresh_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(clean_stale(dir.path()).unwrap(), Existing::None);
    }
}
