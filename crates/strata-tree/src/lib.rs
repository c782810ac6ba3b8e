//! strata-tree (work in progress).
