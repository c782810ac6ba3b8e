//! strata: fast, hermetic container image builds.

fn main() {}
