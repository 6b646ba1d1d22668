//! A node's organisation files: the admin's organisation key, this user's
//! membership, and the newest revocation list seen.
//!
//! Files in the home (all written atomically, 0600):
//! - `org.key`: the organisation key and name (admin only);
//! - `membership.txt`: this user's membership, in its printable form;
//! - `revocations.bin`: the newest verified revocation list.
//!
//! Everything read here is checked before use: a membership must be for
//! this user and validly signed, a revocation list must be signed by this
//! organisation and newer than the one held.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tincan_core::{Identity, Membership, MembershipError, OrgKey, Revocations};

use crate::home::Home;
use crate::platform::write_secret;

/// Version byte of `org.key`.
const ORG_KEY_VERSION: u8 = 1;

/// Why an organisation file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrgError {
    /// This home holds no organisation key (not the admin's home).
    #[error("no organisation key in {0}: run `tincan org init --name NAME` in the admin's home")]
    NoOrgKey(String),
    /// `org init` would replace an existing organisation.
    #[error("an organisation key already exists in {0}; use --force to replace it")]
    OrgExists(String),
    /// This node has not joined an organisation.
    #[error("this node has not joined an organisation: ask your admin for a membership file and run `tincan org join FILE`")]
    NotJoined,
    /// A file is not what it should be.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The membership or revocation list does not verify.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The membership is for another user.
    #[error("this membership is for user {0}, not for this identity; the admin must issue one for `tincan whoami`'s user_id")]
    NotForMe(String),
    /// A revocation list older than (or as old as) the one held.
    #[error("revocation list {got} is not newer than the one held ({held})")]
    StaleRevocations {
        /// Serial offered.
        got: u64,
        /// Serial held.
        held: u64,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The admin's organisation key and its name.
#[derive(Clone, Debug)]
pub struct OrgAdmin {
    /// The signing key.
    pub key: OrgKey,
    /// The organisation's name.
    pub name: String,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OrgError + '_ {
    move |source| OrgError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, OrgError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl OrgAdmin {
    /// Loads the organisation key of `home`.
    pub fn load(home: &Home) -> Result<Self, OrgError> {
        let path = home.org_key_path();
        let bytes = read_optional(&path)?
            .ok_or_else(|| OrgError::NoOrgKey(home.root().display().to_string()))?;
        let invalid = || OrgError::Invalid {
            path: path.display().to_string(),
            reason: "not a tincan organisation key".into(),
        };
        let (&version, rest) = bytes.split_first().ok_or_else(invalid)?;
        if version != ORG_KEY_VERSION || rest.len() < 32 {
            return Err(invalid());
        }
        let (seed, name) = rest.split_at(32);
        let seed: [u8; 32] = seed.try_into().map_err(|_| invalid())?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| invalid())?;
        Ok(Self {
            key: OrgKey::from_bytes(&seed),
            name,
        })
    }

    /// Creates a new organisation in `home` (refuses to replace one unless
    /// `force`).
    pub fn create(home: &Home, key: OrgKey, name: &str, force: bool) -> Result<Self, OrgError> {
        let path = home.org_key_path();
        if path.exists() && !force {
            return Err(OrgError::OrgExists(home.root().display().to_string()));
        }
        home.create().map_err(io_err(&path))?;
        let mut bytes = vec![ORG_KEY_VERSION];
        bytes.extend_from_slice(&key.to_bytes());
        bytes.extend_from_slice(name.as_bytes());
        write_secret(&path, &bytes).map_err(io_err(&path))?;
        Ok(Self {
            key,
            name: name.to_string(),
        })
    }

    /// Adds `user` to the revocation list, signs the new list (serial one
    /// higher than the held one) and stores it in `home`.
    pub fn revoke(&self, home: &Home, user: tincan_core::UserId) -> Result<Revocations, OrgError> {
        let held = load_revocations(home)?.filter(|l| l.org_key == self.key.public_key());
        let (serial, mut revoked) = held
            .map(|l| (l.serial, l.revoked))
            .unwrap_or((0, Vec::new()));
        revoked.push(user);
        let list = self.key.revoke(serial + 1, revoked, now_secs());
        save_revocations(home, &list)?;
        Ok(list)
    }
}

/// Loads this user's membership, if they joined an organisation. It is
/// checked against `identity` (signature and user; expiry is the caller's
/// concern, so an expired membership can still be shown).
pub fn load_membership(home: &Home, identity: &Identity) -> Result<Option<Membership>, OrgError> {
    let path = home.membership_path();
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let membership = Membership::from_text(&text)?;
    check_membership(&membership, identity)?;
    Ok(Some(membership))
}

/// Checks that `membership` is validly signed, unexpired and for `identity`.
pub fn check_membership(membership: &Membership, identity: &Identity) -> Result<(), OrgError> {
    if membership.user != identity.user_id() {
        return Err(OrgError::NotForMe(membership.user.to_string()));
    }
    match membership.verify(now_secs()) {
        Ok(()) | Err(MembershipError::Expired(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Stores `membership` as this user's (after [`check_membership`]).
pub fn save_membership(
    home: &Home,
    identity: &Identity,
    membership: &Membership,
) -> Result<(), OrgError> {
    check_membership(membership, identity)?;
    membership.verify(now_secs())?;
    let path = home.membership_path();
    home.create().map_err(io_err(&path))?;
    write_secret(&path, format!("{}\n", membership.to_text()).as_bytes()).map_err(io_err(&path))
}

/// The newest revocation list held, if any (verified).
pub fn load_revocations(home: &Home) -> Result<Option<Revocations>, OrgError> {
    let path = home.revocations_path();
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let list = Revocations::from_bytes(&bytes)?;
    list.verify()?;
    Ok(Some(list))
}

/// Stores `list` (verified by the caller or made here).
pub fn save_revocations(home: &Home, list: &Revocations) -> Result<(), OrgError> {
    let path = home.revocations_path();
    home.create().map_err(io_err(&path))?;
    write_secret(&path, &list.to_bytes()).map_err(io_err(&path))
}

/// Accepts `list` if it is signed by the organisation of `membership` and
/// newer than `held`.
pub fn accept_revocations(
    list: &Revocations,
    membership: &Membership,
    held: Option<&Revocations>,
) -> Result<(), OrgError> {
    list.verify()?;
    if list.org_key != membership.org_key {
        return Err(MembershipError::BadSignature.into());
    }
    if let Some(held) = held {
        if list.serial <= held.serial {
            return Err(OrgError::StaleRevocations {
                got: list.serial,
                held: held.serial,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_core::entropy::SeededEntropy;

    #[test]
    fn admin_issues_member_joins_and_revocations_grow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path());
        let key = OrgKey::generate(&mut SeededEntropy::new(1));
        let admin = OrgAdmin::create(&home, key, "Acme", false).expect("create");
        assert!(matches!(
            OrgAdmin::create(&home, admin.key.clone(), "Acme", false),
            Err(OrgError::OrgExists(_))
        ));
        let loaded = OrgAdmin::load(&home).expect("load");
        assert_eq!(loaded.key.id(), admin.key.id());
        assert_eq!(loaded.name, "Acme");

        let me = Identity::generate("alice", now_secs(), &mut SeededEntropy::new(2));
        let other = Identity::generate("bob", now_secs(), &mut SeededEntropy::new(3));
        let m = admin
            .key
            .issue("Acme", me.user_id(), now_secs(), now_secs() + 3600)
            .expect("issue");
        assert!(matches!(
            save_membership(&home, &other, &m),
            Err(OrgError::NotForMe(_))
        ));
        save_membership(&home, &me, &m).expect("save");
        assert_eq!(load_membership(&home, &me).expect("load"), Some(m.clone()));

        let first = admin.revoke(&home, other.user_id()).expect("revoke");
        let second = admin.revoke(&home, me.user_id()).expect("revoke");
        assert_eq!(second.serial, first.serial + 1);
        assert!(second.is_revoked(&other.user_id()) && second.is_revoked(&me.user_id()));
        assert!(accept_revocations(&second, &m, Some(&first)).is_ok());
        assert!(matches!(
            accept_revocations(&first, &m, Some(&second)),
            Err(OrgError::StaleRevocations { .. })
        ));
        std::fs::write(home.membership_path(), "garbage").expect("write");
        assert!(load_membership(&home, &me).is_err());
    }
}
