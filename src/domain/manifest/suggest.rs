//! "Did you mean": the known key closest to a misspelt one. A typo in a key is worse than a
//! typo in a value: the key is silently ignored and its default applies, so the author only
//! finds out when the run misbehaves.

/// The known key `key` was most likely meant to be, if one is close enough: the same words
/// in another spelling (`outputMessageType`), or at most two edits away from a key long
/// enough that two edits are a typo rather than a different word (`comand` → `command`).
pub(crate) fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let squashed = squash(key);
    if let Some(k) = known.iter().find(|k| squash(k) == squashed) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (edit_distance(&key.to_ascii_lowercase(), k), *k))
        .filter(|(d, k)| *d <= 2 && d * 4 <= k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Lowercase without separators: `output-message_Type` → `outputmessagetype`.
fn squash(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Levenshtein distance (insertions, deletions, substitutions), by characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("comand", "command"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn close_keys_are_suggested_and_far_ones_are_not() {
        let known = [
            "command",
            "output_message_type",
            "pool",
            "pool_slots",
            "workdir",
        ];
        assert_eq!(did_you_mean("comand", &known), Some("command"));
        assert_eq!(
            did_you_mean("output_mesage_type", &known),
            Some("output_message_type")
        );
        assert_eq!(
            did_you_mean("outputMessageType", &known),
            Some("output_message_type")
        );
        assert_eq!(did_you_mean("pool_slot", &known), Some("pool_slots"));
        assert_eq!(did_you_mean("poll", &known), Some("pool"));
        // Short keys need an exact-but-for-one match; unrelated words get nothing.
        assert_eq!(did_you_mean("seed", &known), None);
        assert_eq!(did_you_mean("symbols", &known), None);
    }
}
