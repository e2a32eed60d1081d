//! Who a recipient is: the rule that links a recipient to a user account, and how two links to
//! one summary row merge. The directory of accounts (`auth_users`) is read by `store::users`;
//! the decision is made here, without I/O.

use crate::domain::ses::SesEvent;

/// How a recipient's user account was found; a stronger source wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserSource {
    Unresolved = 0,
    Email = 1,
    Header = 2,
}

/// The user account a recipient resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserLink {
    pub user_id: Option<u64>,
    pub source: UserSource,
}

impl UserLink {
    pub const NONE: UserLink = UserLink {
        user_id: None,
        source: UserSource::Unresolved,
    };

    /// Stronger source first; between equals, the smaller id (deterministic).
    pub(crate) fn merge(self, other: UserLink) -> UserLink {
        match other.source.cmp(&self.source) {
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Equal => match (self.user_id, other.user_id) {
                (Some(a), Some(b)) if b < a => other,
                (None, Some(_)) => other,
                _ => self,
            },
        }
    }
}

/// The user a recipient of `event` resolves to: the `user_id` header speaks for the first
/// destination address only (as the old job did, since the header names one account); every
/// recipient is otherwise found by email, through `by_email`.
pub fn link(event: &SesEvent, recipient: &str, by_email: impl Fn(&str) -> Option<u64>) -> UserLink {
    if let Some(id) = event
        .header_user_id
        .filter(|_| recipient == event.first_destination)
    {
        return UserLink {
            user_id: Some(id),
            source: UserSource::Header,
        };
    }
    match by_email(recipient) {
        Some(id) => UserLink {
            user_id: Some(id),
            source: UserSource::Email,
        },
        None => UserLink::NONE,
    }
}
