//! Selection of what to fetch: architectures, Python tags, and whether unfetchable entries are
//! an error. Also the wheel file name parser the platform filter needs.

/// What the caller wants out of the lockfiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Target architectures (`x86_64`, `aarch64`, `amd64`, `arm64`, ...). Empty: all.
    ///
    /// Wheels are kept when their platform tag is `any` or a Linux tag for one of these
    /// arches (macOS and Windows wheels are dropped). RPM lockfile `arches[]` sections are kept
    /// when their `arch` is one of these. sdists, npm and generic artifacts are never filtered.
    pub arches: Vec<String>,
    /// Python tags of the target interpreter (`cp312`, `py3`, ...). Empty: all wheels.
    ///
    /// A wheel is kept when one of its Python tags equals one of these, is a generic `pyX[Y]`
    /// tag of the same major version, or is a `cpXY-abi3` wheel for an older CPython.
    pub python_tags: Vec<String>,
    /// Leave out entries that have no downloadable file (directories, VCS checkouts, local
    /// paths, git/file: URLs) instead of failing; they are reported in [`crate::LoadOutcome`].
    pub skip_unfetchable: bool,
}

/// Maps common arch aliases to the names RPM and wheel tags use (`amd64` → `x86_64`,
/// `arm64` → `aarch64`, `ppc64el` → `ppc64le`); anything else is returned lower-cased.
pub fn normalize_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "amd64" | "x64" | "x86-64" => "x86_64".into(),
        "arm64" => "aarch64".into(),
        "ppc64el" => "ppc64le".into(),
        "386" | "i386" => "i686".into(),
        other => other.into(),
    }
}

/// The architectures wheel platform tags and RPM lockfiles name (after [`normalize_arch`]).
pub const KNOWN_ARCHES: &[&str] = &[
    "x86_64",
    "aarch64",
    "ppc64le",
    "s390x",
    "i686",
    "armv7l",
    "armv7hl",
    "riscv64",
    "ppc64",
    "loongarch64",
];

/// Checks a user-given architecture: its normalized name when known, else an error that
/// lists the known ones (a typo must not silently filter out every native wheel).
pub fn check_arch(arch: &str) -> Result<String, String> {
    let normalized = normalize_arch(arch);
    if KNOWN_ARCHES.contains(&normalized.as_str()) {
        Ok(normalized)
    } else {
        Err(format!(
            "unknown architecture `{arch}` (known: {}; aliases amd64, arm64, ppc64el, i386)",
            KNOWN_ARCHES.join(", ")
        ))
    }
}

impl Filter {
    fn normalized_arches(&self) -> Vec<String> {
        self.arches.iter().map(|a| normalize_arch(a)).collect()
    }

    /// Whether an RPM lockfile `arches[].arch` section is wanted.
    pub fn wants_rpm_arch(&self, arch: &str) -> bool {
        self.arches.is_empty() || self.normalized_arches().contains(&normalize_arch(arch))
    }

    /// Whether a wheel is wanted; `Err` carries the reason it is not, for the skipped list.
    pub fn wants_wheel(&self, wheel: &WheelName) -> Result<(), String> {
        if !self.arches.is_empty() {
            let arches = self.normalized_arches();
            if !wheel.platforms.iter().any(|p| platform_matches(p, &arches)) {
                return Err(format!(
                    "platform tag `{}` does not match the requested arches ({})",
                    wheel.platforms.join("."),
                    arches.join(", ")
                ));
            }
        }
        if !self.python_tags.is_empty()
            && !wheel.pythons.iter().any(|py| {
                self.python_tags
                    .iter()
                    .any(|want| python_matches(py, &wheel.abis, &want.to_ascii_lowercase()))
            })
        {
            return Err(format!(
                "python tag `{}` does not match the requested python tags ({})",
                wheel.pythons.join("."),
                self.python_tags.join(", ")
            ));
        }
        Ok(())
    }
}

/// `true` if a wheel platform tag installs on one of `arches` (already normalized) on Linux.
fn platform_matches(platform: &str, arches: &[String]) -> bool {
    if platform == "any" {
        return true;
    }
    let is_linux = ["linux_", "manylinux", "musllinux_"]
        .iter()
        .any(|p| platform.starts_with(p));
    is_linux
        && arches
            .iter()
            .any(|arch| platform.ends_with(&format!("_{arch}")))
}

/// `true` if wheel python tag `py` (with its ABI tags) runs on the interpreter tagged `want`.
fn python_matches(py: &str, abis: &[String], want: &str) -> bool {
    if py == want {
        return true;
    }
    let (want_impl, want_ver) = split_python_tag(want);
    let (py_impl, py_ver) = split_python_tag(py);
    if py_impl == "py" {
        // Generic tags: `py3` runs on any 3.x, `py312` on 3.12.
        return !py_ver.is_empty() && want_ver.starts_with(py_ver);
    }
    // Stable ABI: cp38-abi3 runs on CPython >= 3.8 (same major).
    if py_impl == "cp" && want_impl == "cp" && abis.iter().any(|a| a == "abi3") {
        return match (cpython_version(py_ver), cpython_version(want_ver)) {
            (Some((maj, min)), Some((want_maj, want_min))) => maj == want_maj && min <= want_min,
            _ => false,
        };
    }
    false
}

fn split_python_tag(tag: &str) -> (&str, &str) {
    let i = tag.find(|c: char| c.is_ascii_digit()).unwrap_or(tag.len());
    tag.split_at(i)
}

fn cpython_version(digits: &str) -> Option<(u32, u32)> {
    let (major, minor) = digits.split_at_checked(1)?;
    Some((
        major.parse().ok()?,
        if minor.is_empty() {
            0
        } else {
            minor.parse().ok()?
        },
    ))
}

/// The parts of a wheel file name: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`,
/// with each tag set split on `.` (compressed tag sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// Distribution name as written in the file name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Build tag, if any.
    pub build: Option<String>,
    /// Python tags (`cp312`, `py3`, ...).
    pub pythons: Vec<String>,
    /// ABI tags (`cp312`, `abi3`, `none`, ...).
    pub abis: Vec<String>,
    /// Platform tags (`manylinux_2_17_x86_64`, `any`, ...).
    pub platforms: Vec<String>,
}

impl WheelName {
    /// Parses a wheel file name; `Err` says what is wrong with it.
    pub fn parse(file_name: &str) -> Result<WheelName, String> {
        let stem = file_name
            .strip_suffix(".whl")
            .ok_or_else(|| format!("`{file_name}` is not a wheel file name (no `.whl` suffix)"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, tags) = match parts.as_slice() {
            [n, v, py, abi, plat] => (n, v, None, [py, abi, plat]),
            [n, v, b, py, abi, plat] => (n, v, Some(b.to_string()), [py, abi, plat]),
            _ => {
                return Err(format!(
                    "`{file_name}` is not a valid wheel file name \
                     (expected name-version[-build]-python-abi-platform.whl)"
                ));
            }
        };
        let split = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        let [py, abi, plat] = tags;
        if [name, version, py, abi, plat].iter().any(|s| s.is_empty()) {
            return Err(format!(
                "`{file_name}` is not a valid wheel file name (empty component)"
            ));
        }
        Ok(WheelName {
            name: name.to_string(),
            version: version.to_string(),
            build,
            pythons: split(py),
            abis: split(abi),
            platforms: split(plat),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arches_are_checked_and_normalized() {
        assert_eq!(check_arch("amd64").unwrap(), "x86_64");
        assert_eq!(check_arch("ARM64").unwrap(), "aarch64");
        assert_eq!(check_arch("s390x").unwrap(), "s390x");
        let err = check_arch("x86-46").unwrap_err();
        assert!(err.contains("unknown architecture `x86-46`"), "{err}");
    }

    fn arches(a: &[&str]) -> Filter {
        Filter {
            arches: a.iter().map(|s| s.to_string()).collect(),
            ..Filter::default()
        }
    }

    #[test]
    fn wheel_names_parse_with_build_and_compressed_tags() {
        let w = WheelName::parse(
            "numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name, "numpy");
        assert_eq!(w.version, "2.2.3");
        assert_eq!(w.build, None);
        assert_eq!(w.pythons, ["cp312"]);
        assert_eq!(
            w.platforms,
            ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        );
        let b = WheelName::parse("six-1.16.0-1-py2.py3-none-any.whl").unwrap();
        assert_eq!(b.build.as_deref(), Some("1"));
        assert_eq!(b.pythons, ["py2", "py3"]);
        for bad in [
            "six-1.16.0.tar.gz",
            "six-py3-none-any.whl",
            "a-b-c-d-e-f-g.whl",
            "a--py3-none-any.whl",
        ] {
            assert!(WheelName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_filter_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["x86_64"], "pkg-1-py3-none-any.whl", true),
            (
                &["x86_64"],
                "pkg-1-cp312-cp312-manylinux_2_17_x86_64.whl",
                true,
            ),
            (
                &["x86_64"],
                "pkg-1-cp312-cp312-manylinux2014_x86_64.whl",
                true,
            ),
            (
                &["x86_64"],
                "pkg-1-cp312-cp312-musllinux_1_1_x86_64.whl",
                true,
            ),
            (&["x86_64"], "pkg-1-cp312-cp312-linux_x86_64.whl", true),
            (&["amd64"], "pkg-1-cp312-cp312-manylinux1_x86_64.whl", true),
            (
                &["x86_64"],
                "pkg-1-cp312-cp312-manylinux_2_17_aarch64.whl",
                false,
            ),
            (
                &["x86_64"],
                "pkg-1-cp312-cp312-macosx_11_0_x86_64.whl",
                false,
            ),
            (&["x86_64"], "pkg-1-cp312-cp312-win_amd64.whl", false),
            (
                &["arm64"],
                "pkg-1-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                true,
            ),
            (&["arm64"], "pkg-1-cp312-cp312-macosx_11_0_arm64.whl", false),
            (
                &["aarch64", "x86_64"],
                "pkg-1-cp312-cp312-manylinux_2_28_x86_64.whl",
                true,
            ),
            (
                &["ppc64le"],
                "pkg-1-cp312-cp312-manylinux_2_17_ppc64.whl",
                false,
            ),
            (&[], "pkg-1-cp312-cp312-win_amd64.whl", true),
        ];
        for (want, file, keep) in cases {
            let wheel = WheelName::parse(file).unwrap();
            assert_eq!(
                arches(want).wants_wheel(&wheel).is_ok(),
                *keep,
                "{want:?} {file}"
            );
        }
    }

    #[test]
    fn python_tag_filter_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("cp312", "pkg-1-cp312-cp312-linux_x86_64.whl", true),
            ("cp312", "pkg-1-cp311-cp311-linux_x86_64.whl", false),
            ("cp312", "pkg-1-py3-none-any.whl", true),
            ("cp312", "pkg-1-py2.py3-none-any.whl", true),
            ("cp312", "pkg-1-py2-none-any.whl", false),
            ("cp312", "pkg-1-cp38-abi3-manylinux_2_17_x86_64.whl", true),
            ("cp37", "pkg-1-cp38-abi3-manylinux_2_17_x86_64.whl", false),
            ("py3", "pkg-1-py3-none-any.whl", true),
        ];
        for (want, file, keep) in cases {
            let filter = Filter {
                python_tags: vec![want.to_string()],
                ..Filter::default()
            };
            let wheel = WheelName::parse(file).unwrap();
            assert_eq!(filter.wants_wheel(&wheel).is_ok(), *keep, "{want} {file}");
        }
    }

    #[test]
    fn rpm_arches_are_normalized() {
        assert!(arches(&["amd64"]).wants_rpm_arch("x86_64"));
        assert!(!arches(&["amd64"]).wants_rpm_arch("aarch64"));
        assert!(arches(&[]).wants_rpm_arch("s390x"));
        assert_eq!(normalize_arch("ARM64"), "aarch64");
    }
}
