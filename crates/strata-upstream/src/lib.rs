//! strata-upstream (work in progress).
