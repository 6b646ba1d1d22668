//! How a peer typed by a user (`send bob`, `history 6i5l-x27l`) resolves
//! to exactly one user, or to a refusal that lists who it could be.
//!
//! # Rules, in order
//! 1. **The pin.** The holder of the name's pin (the first user seen under
//!    it; names compared by confusable skeleton, [`crate::name::pin_key`]),
//!    when they are known. Nobody else ever wins a pinned name.
//! 2. **An exact display name**, unique: compared by skeleton like the pin,
//!    and also the `name (abcd-efgh)` form every refusal lists.
//! 3. **A word or a prefix** of a display name, case-insensitive and
//!    unique: `bob` finds "Bob Builder", `bob b` too.
//! 4. **A fingerprint** as `whoami` prints it (`6i5l-x27l`) or a user-id
//!    prefix (at least 4 characters).
//!
//! A step that finds several users refuses, listing them with their
//! fingerprints (pick one by fingerprint). So does a step that finds only
//! a user announcing a name pinned to someone else (an impostor): such a
//! user is never chosen by name, only by fingerprint or by the
//! `name (fingerprint)` form. Nothing found at all: the refusal lists
//! everyone known.

use crate::name::pin_key;
use crate::UserId;

/// One user a typed name may resolve to, as the peer book knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The user.
    pub user: UserId,
    /// The name their devices announce (made safe to show).
    pub name: String,
    /// Whether they hold the pin of that name (false for an impostor).
    pub holds_name: bool,
}

impl Candidate {
    /// `name (abcd-efgh)`, as refusals list a candidate.
    fn described(&self) -> String {
        format!("{} ({})", self.name, self.user.fingerprint())
    }
}

/// Why a typed peer name did not resolve to one user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Nobody matches; the candidates are everyone known.
    #[error("no peer matches {query:?}; known peers: {}", list(candidates))]
    Unknown {
        /// What the user typed.
        query: String,
        /// Everyone known, as `name (fingerprint)`.
        candidates: Vec<String>,
    },
    /// The name could be any of several users (or only a user who is not
    /// its holder); the candidates are those.
    #[error(
        "{query:?} could be {}; pick one by fingerprint, e.g. {}",
        list(candidates),
        example(candidates)
    )]
    Ambiguous {
        /// What the user typed.
        query: String,
        /// The matching users, as `name (fingerprint)`.
        candidates: Vec<String>,
    },
}

fn list(candidates: &[String]) -> String {
    if candidates.is_empty() {
        "none yet".to_string()
    } else {
        candidates.join(", ")
    }
}

/// The fingerprint of the first candidate (`name (abcd-efgh)`), quoted.
fn example(candidates: &[String]) -> String {
    candidates
        .first()
        .and_then(|c| c.rsplit_once(" ("))
        .map(|(_, fp)| format!("\"{}\"", fp.trim_end_matches(')')))
        .unwrap_or_default()
}

/// Resolves `query` among `candidates` (each user once) by the rules in
/// the module docs. `pin_holder` is whoever holds the pin of the query's
/// skeleton, if anyone does.
pub fn resolve(
    query: &str,
    pin_holder: Option<UserId>,
    candidates: &[Candidate],
) -> Result<UserId, ResolveError> {
    // 1. The pin.
    if let Some(holder) = pin_holder.filter(|h| candidates.iter().any(|c| c.user == *h)) {
        return Ok(holder);
    }
    // 2. An exact display name (or the listed `name (fingerprint)`).
    let key = pin_key(query);
    let exact = pick(query, candidates, |c| {
        !key.is_empty() && (pin_key(&c.name) == key || pin_key(&c.described()) == key)
    })?;
    if let Some(user) = exact {
        return Ok(user);
    }
    // 3. A word or a prefix of a display name.
    let typed = words(query);
    let partial = pick(query, candidates, |c| {
        let name = words(&c.name);
        !typed.is_empty() && (name.starts_with(&typed) || name.split(' ').any(|word| word == typed))
    })?;
    if let Some(user) = partial {
        return Ok(user);
    }
    // 4. A fingerprint or an id prefix. Compared as typed (lowercased),
    // not by skeleton: skeletons rewrite letters such as `m` to `rn`.
    let compact: String = query.trim().to_lowercase().replace('-', "");
    let by_id = pick(query, candidates, |c| {
        compact.len() >= 4 && c.user.matches_prefix(&compact)
    })?;
    by_id.ok_or_else(|| ResolveError::Unknown {
        query: query.to_string(),
        candidates: candidates.iter().map(Candidate::described).collect(),
    })
}

/// Resolves an `@name` in a message: like [`resolve`] but stricter, since
/// nobody chose to address anyone by a letter or a number in passing
/// (`@a`, `@2026`): the pin, an exact display name or a whole word of one,
/// never a prefix or a fingerprint. `None` when that finds nobody or
/// several users.
pub fn resolve_mention(
    token: &str,
    pin_holder: Option<UserId>,
    candidates: &[Candidate],
) -> Option<UserId> {
    if let Some(holder) = pin_holder.filter(|h| candidates.iter().any(|c| c.user == *h)) {
        return Some(holder);
    }
    let key = pin_key(token);
    if let Ok(Some(user)) = pick(token, candidates, |c| {
        !key.is_empty() && pin_key(&c.name) == key
    }) {
        return Some(user);
    }
    let typed = words(token);
    pick(token, candidates, |c| {
        !typed.is_empty() && words(&c.name).split(' ').any(|word| word == typed)
    })
    .ok()
    .flatten()
}

/// One step: the single user `matches` finds, none (`Ok(None)`: on to the
/// next step), or a refusal listing several, or a lone impostor.
fn pick(
    query: &str,
    candidates: &[Candidate],
    matches: impl Fn(&Candidate) -> bool,
) -> Result<Option<UserId>, ResolveError> {
    let found: Vec<&Candidate> = candidates.iter().filter(|c| matches(c)).collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] if one.holds_name || !matches_by_name(query, one) => Ok(Some(one.user)),
        many => Err(ResolveError::Ambiguous {
            query: query.to_string(),
            candidates: many.iter().map(|c| c.described()).collect(),
        }),
    }
}

/// Whether `query` names `candidate` without their fingerprint: the only
/// way an impostor must not be chosen.
fn matches_by_name(query: &str, candidate: &Candidate) -> bool {
    let typed = query.trim().to_lowercase().replace('-', "");
    let by_fingerprint = typed.len() >= 4 && candidate.user.matches_prefix(&typed);
    let fingerprinted = pin_key(query) == pin_key(&candidate.described());
    !by_fingerprint && !fingerprinted
}

/// Lower-cased, with runs of whitespace made one space: how names are
/// compared word by word.
fn words(text: &str) -> String {
    text.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_needs_a_whole_word_not_a_prefix_or_a_fingerprint() {
        let bob = Candidate {
            user: user(1),
            name: "Bob Builder".into(),
            holds_name: true,
        };
        let all = [bob.clone()];
        assert_eq!(resolve_mention("bob", None, &all), Some(bob.user));
        assert_eq!(resolve_mention("Builder", None, &all), Some(bob.user));
        assert_eq!(resolve_mention("b", None, &all), None);
        let fingerprint = bob.user.fingerprint();
        assert_eq!(resolve_mention(&fingerprint, None, &all), None);
        assert_eq!(
            resolve("b", None, &all),
            Ok(bob.user),
            "a command may abbreviate"
        );
    }

    fn user(n: u8) -> UserId {
        UserId::from_public_key(&[n; 32])
    }

    fn candidate(n: u8, name: &str) -> Candidate {
        Candidate {
            user: user(n),
            name: name.to_string(),
            holds_name: true,
        }
    }

    fn candidates(c: &[Candidate], err: Result<UserId, ResolveError>) -> Vec<String> {
        match err {
            Err(ResolveError::Ambiguous { candidates, .. }) => candidates,
            other => panic!("expected a refusal listing {c:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_pin_holder_wins_before_anything_else() {
        let bob = candidate(1, "Bob");
        let builder = candidate(2, "Bob Builder");
        let all = [bob.clone(), builder.clone()];
        assert_eq!(resolve("bob", Some(bob.user), &all), Ok(bob.user));
        assert_eq!(resolve("B\u{043E}B", Some(bob.user), &all), Ok(bob.user));
        // A holder not known (any more) is skipped: the next steps decide.
        assert_eq!(
            resolve("bob", Some(user(9)), std::slice::from_ref(&builder)),
            Ok(builder.user)
        );
    }

    #[test]
    fn an_exact_name_beats_a_word_of_another() {
        let bob = candidate(1, "Bob");
        let builder = candidate(2, "Bob Builder");
        let all = [bob.clone(), builder.clone()];
        assert_eq!(resolve("BOB", None, &all), Ok(bob.user));
        assert_eq!(resolve("bob  builder", None, &all), Ok(builder.user));
    }

    #[test]
    fn a_word_or_prefix_finds_a_unique_user() {
        let builder = candidate(1, "Bob Builder");
        let ann = candidate(2, "Ann Lee");
        let all = [builder.clone(), ann.clone()];
        for query in ["bob", "Builder", "bob b", "BO", "lee"] {
            let want = if query == "lee" {
                ann.user
            } else {
                builder.user
            };
            assert_eq!(resolve(query, None, &all), Ok(want), "{query}");
        }
        // Inside a word is not a word.
        assert!(matches!(
            resolve("uild", None, &all),
            Err(ResolveError::Unknown { .. })
        ));
    }

    #[test]
    fn several_users_are_refused_with_their_fingerprints() {
        let builder = candidate(1, "Bob Builder");
        let marley = candidate(2, "Bob Marley");
        let all = [builder.clone(), marley.clone()];
        let err = resolve("bob", None, &all);
        let listed = candidates(&all, err.clone());
        assert_eq!(
            listed,
            vec![
                format!("Bob Builder ({})", builder.user.fingerprint()),
                format!("Bob Marley ({})", marley.user.fingerprint()),
            ]
        );
        let text = err.unwrap_err().to_string();
        assert!(text.contains("pick one by fingerprint"), "{text}");
        assert!(text.contains(&builder.user.fingerprint()), "{text}");
        // What the refusal lists picks one.
        assert_eq!(resolve(&listed[1], None, &all), Ok(marley.user));
        assert_eq!(
            resolve(&marley.user.fingerprint(), None, &all),
            Ok(marley.user)
        );
        assert_eq!(
            resolve(&marley.user.fingerprint().to_uppercase(), None, &all),
            Ok(marley.user)
        );
    }

    #[test]
    fn an_impostor_is_never_chosen_by_name() {
        let mut fake = candidate(2, "Bob");
        fake.holds_name = false;
        let all = [fake.clone()];
        // The holder is not known: the impostor is listed, not chosen.
        for query in ["bob", "bo", "B\u{043E}b"] {
            let listed = candidates(&all, resolve(query, Some(user(1)), &all));
            assert_eq!(listed, vec![format!("Bob ({})", fake.user.fingerprint())]);
        }
        assert_eq!(
            resolve(&fake.described(), Some(user(1)), &all),
            Ok(fake.user)
        );
        assert_eq!(
            resolve(&fake.user.fingerprint(), Some(user(1)), &all),
            Ok(fake.user)
        );
    }

    #[test]
    fn an_id_prefix_resolves_whatever_its_skeleton_and_nothing_is_unknown() {
        let someone = (1..=255u8)
            .map(|n| candidate(n, "Someone"))
            .find(|c| c.user.to_string()[..8].contains(['m', 'w']))
            .expect("some id has an m or a w in its first 8 characters");
        let other = candidate(0, "Other");
        let all = [someone.clone(), other];
        let id = someone.user.to_string();
        assert_eq!(resolve(&id[..8], None, &all), Ok(someone.user), "{id}");
        assert_eq!(
            resolve(&id[..8].to_uppercase(), None, &all),
            Ok(someone.user)
        );
        match resolve("dave", None, &all) {
            Err(ResolveError::Unknown { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("expected unknown, got {other:?}"),
        }
        // Short or empty text is no id prefix.
        assert!(matches!(
            resolve("", None, &all),
            Err(ResolveError::Unknown { .. })
        ));
    }
}
