//! Which recipients may share a set, and what a set's stanza types say
//! about a quantum computer (SPEC.md §4.7).
//!
//! age's label rule: every public-key recipient of a set must carry the
//! same label set. X25519 carries none, `mlkem768x25519` carries
//! `postquantum`, a plugin what it says. So a post-quantum recipient is
//! never mixed with a classical one by accident: the classical stanza would
//! give a quantum attacker the file key, and with it the set. The
//! passphrase stanza stands outside the rule (Argon2id and ChaCha20 are
//! symmetric).

use std::collections::BTreeSet;

use crate::error::{Error, MixError};

/// The label of recipients that resist a quantum computer.
pub(crate) const POST_QUANTUM: &str = "postquantum";

/// A public-key recipient as the label rule sees it: its stanza type (for
/// messages) and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Labelled {
    pub(crate) kind: String,
    pub(crate) labels: BTreeSet<String>,
}

/// Applies the label rule to the public-key recipients of one set, in the
/// order given. With `allow_classical`, label sets are compared without
/// `postquantum`: other labels still bind.
///
/// # Errors
///
/// [`Error::IncompatibleRecipients`] naming the first pair that breaks it.
pub(crate) fn check_mix(recipients: &[Labelled], allow_classical: bool) -> Result<(), Error> {
    let Some((first, rest)) = recipients.split_first() else {
        return Ok(());
    };
    let without_pq = |labels: &BTreeSet<String>| {
        labels
            .iter()
            .filter(|label| *label != POST_QUANTUM)
            .cloned()
            .collect::<BTreeSet<String>>()
    };
    for other in rest {
        if other.labels == first.labels {
            continue;
        }
        if without_pq(&other.labels) != without_pq(&first.labels) {
            return Err(Error::IncompatibleRecipients {
                reason: MixError::Labels {
                    first: first.kind.clone(),
                    other: other.kind.clone(),
                },
            });
        }
        if !allow_classical {
            let (post_quantum, classical) = if first.labels.contains(POST_QUANTUM) {
                (first, other)
            } else {
                (other, first)
            };
            return Err(Error::IncompatibleRecipients {
                reason: MixError::Classical {
                    post_quantum: post_quantum.kind.clone(),
                    classical: classical.kind.clone(),
                },
            });
        }
    }
    Ok(())
}

/// What a set's stanza types say about an attacker with a quantum
/// computer, read without any key ([`VolumeInfo::post_quantum`]).
///
/// [`VolumeInfo::post_quantum`]: crate::VolumeInfo::post_quantum
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostQuantum {
    /// Every stanza is post-quantum (`mlkem768x25519`) or a passphrase
    /// (`argon2id`, symmetric): no stanza falls to a quantum computer.
    Protected,
    /// At least one stanza is classical (`X25519`, a P-256 or SSH type): a
    /// quantum computer that breaks it opens the set, whatever else it
    /// carries.
    Classical {
        /// The classical stanza types, in header order, each once.
        types: Vec<String>,
    },
    /// No classical stanza kuvert knows, but types it does not know (a
    /// plugin's, or grease): their plugins alone can say.
    Unknown {
        /// The unknown stanza types, in header order, each once.
        types: Vec<String>,
    },
}

impl PostQuantum {
    /// Classifies stanza types (SPEC.md §4.7).
    pub(crate) fn of<'a>(types: impl IntoIterator<Item = &'a str>) -> Self {
        // age's native and well-known plugin types.
        const POST_QUANTUM_TYPES: &[&str] = &["mlkem768x25519", "mlkem768p256tag"];
        const SYMMETRIC_TYPES: &[&str] = &["argon2id", "scrypt"];
        const CLASSICAL_TYPES: &[&str] =
            &["X25519", "p256tag", "piv-p256", "ssh-rsa", "ssh-ed25519"];
        let mut classical = Vec::new();
        let mut unknown = Vec::new();
        for kind in types {
            let list = if CLASSICAL_TYPES.contains(&kind) {
                &mut classical
            } else if POST_QUANTUM_TYPES.contains(&kind) || SYMMETRIC_TYPES.contains(&kind) {
                continue;
            } else {
                &mut unknown
            };
            if !list.iter().any(|seen| seen == kind) {
                list.push(kind.to_owned());
            }
        }
        if !classical.is_empty() {
            PostQuantum::Classical { types: classical }
        } else if !unknown.is_empty() {
            PostQuantum::Unknown { types: unknown }
        } else {
            PostQuantum::Protected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(kind: &str, labels: &[&str]) -> Labelled {
        Labelled {
            kind: kind.into(),
            labels: labels.iter().map(|label| (*label).to_owned()).collect(),
        }
    }

    #[test]
    fn equal_label_sets_mix() {
        let pq = labelled("mlkem768x25519", &[POST_QUANTUM]);
        let classical = labelled("X25519", &[]);
        check_mix(&[], false).expect("nobody");
        check_mix(&[pq.clone(), pq.clone(), pq.clone()], false).expect("all post-quantum");
        check_mix(&[classical.clone(), classical.clone()], false).expect("all classical");
    }

    #[test]
    fn post_quantum_beside_classical_is_refused_unless_allowed() {
        let pq = labelled("mlkem768x25519", &[POST_QUANTUM]);
        let classical = labelled("X25519", &[]);
        for order in [[&pq, &classical], [&classical, &pq]] {
            let set = [order[0].clone(), order[1].clone()];
            match check_mix(&set, false) {
                Err(Error::IncompatibleRecipients {
                    reason:
                        MixError::Classical {
                            post_quantum,
                            classical,
                        },
                }) => assert_eq!(
                    (post_quantum.as_str(), classical.as_str()),
                    ("mlkem768x25519", "X25519")
                ),
                other => panic!("{other:?}"),
            }
            check_mix(&set, true).expect("allowed");
        }
    }

    #[test]
    fn other_labels_bind_even_when_classical_is_allowed() {
        let pq = labelled("mlkem768x25519", &[POST_QUANTUM]);
        let tagged = labelled("kuvert-test", &[POST_QUANTUM, "exclusive-7"]);
        for allow in [false, true] {
            assert!(matches!(
                check_mix(&[pq.clone(), tagged.clone()], allow),
                Err(Error::IncompatibleRecipients {
                    reason: MixError::Labels { first, other }
                }) if first == "mlkem768x25519" && other == "kuvert-test"
            ));
        }
    }

    #[test]
    fn stanza_types_are_classified() {
        let of = |types: &[&str]| PostQuantum::of(types.iter().copied());
        assert_eq!(of(&["mlkem768x25519"]), PostQuantum::Protected);
        assert_eq!(of(&["mlkem768x25519", "argon2id"]), PostQuantum::Protected);
        assert_eq!(of(&["argon2id"]), PostQuantum::Protected);
        assert_eq!(
            of(&["X25519", "mlkem768x25519", "X25519", "piv-p256"]),
            PostQuantum::Classical {
                types: vec!["X25519".into(), "piv-p256".into()]
            }
        );
        assert_eq!(
            of(&["mlkem768x25519", "yubikey-pq", "x25519"]),
            PostQuantum::Unknown {
                types: vec!["yubikey-pq".into(), "x25519".into()]
            }
        );
        // A classical stanza decides, whatever unknown ones sit beside it.
        assert!(matches!(
            of(&["grease", "X25519"]),
            PostQuantum::Classical { .. }
        ));
    }
}
