//! strata-store (work in progress).
