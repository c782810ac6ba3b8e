//! Key tags: the registry tags `sk-<24 lowercase hex>` that `strata build --push` pushes next
//! to an image's tags, naming the image's input key so that a later build (on any machine)
//! can reuse the image instead of rebuilding it. Pure.
//!
//! The one constructor ([`key_tag`]) and the one predicate ([`is_key_tag`]) live here so that
//! the builder that pushes key tags and the retention that treats them as bookkeeping cannot
//! disagree about what a key tag is.

/// The prefix of every key tag.
pub const KEY_TAG_PREFIX: &str = "sk-";

/// How many hex digits of the input key a key tag keeps.
pub const KEY_TAG_HEX_LEN: usize = 24;

/// The key tag of an input key: `sk-` and the first [`KEY_TAG_HEX_LEN`] hex digits of the
/// key (`sha256:` prefix or not). Input keys are sha256 digests in lowercase hex; anything
/// else is a bug in the caller (checked in debug builds).
pub fn key_tag(input_key: &str) -> String {
    let hex = input_key.strip_prefix("sha256:").unwrap_or(input_key);
    let tag = format!(
        "{KEY_TAG_PREFIX}{}",
        hex.get(..KEY_TAG_HEX_LEN).unwrap_or(hex)
    );
    debug_assert!(
        is_key_tag(&tag),
        "input key {input_key:?} is not a sha256 hex digest"
    );
    tag
}

/// Whether a tag is a key tag: exactly `sk-` followed by [`KEY_TAG_HEX_LEN`] lowercase hex
/// digits. `sk-release`, `sk-` plus upper-case hex, or a longer or shorter run of digits are
/// ordinary tags.
pub fn is_key_tag(tag: &str) -> bool {
    tag.strip_prefix(KEY_TAG_PREFIX).is_some_and(|hex| {
        hex.len() == KEY_TAG_HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_table() {
        for (tag, want) in [
            ("sk-0123456789abcdef01234567", true),
            ("sk-ffffffffffffffffffffffff", true),
            ("sk-0123456789ABCDEF01234567", false),
            ("sk-0123456789abcdef0123456", false),
            ("sk-0123456789abcdef012345678", false),
            ("sk-0123456789abcdef0123456g", false),
            ("sk-release", false),
            ("sk-", false),
            ("xsk-0123456789abcdef01234567", false),
            ("SK-0123456789abcdef01234567", false),
            ("latest", false),
        ] {
            assert_eq!(is_key_tag(tag), want, "{tag}");
        }
    }

    #[test]
    fn constructor_makes_what_the_predicate_accepts() {
        let key = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(key_tag(key), "sk-0123456789abcdef01234567");
        assert_eq!(key_tag(&key["sha256:".len()..]), key_tag(key));
        assert!(is_key_tag(&key_tag(key)));
    }
}
