//! The ten SES event types and everything the program needs to know about each, in one table:
//! how SES spells it, where its own object and recipients are in the record, which time it
//! happened at, whether classic notifications carry it, and its summary column. Both record
//! parsers, the SQL that writes summaries and the SQL that reads details take it from here, so
//! an eleventh type is one new row.

use std::fmt;

/// The ten SES event types, spelled as SES spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Send,
    Reject,
    Bounce,
    Complaint,
    Delivery,
    Open,
    Click,
    RenderingFailure,
    DeliveryDelay,
    Subscription,
}

/// Where an event lists its own recipients: the array in its object, and (for arrays of
/// objects) the field holding each address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientsField {
    pub array: &'static str,
    pub address: Option<&'static str>,
}

/// One row of the table.
struct Spec {
    kind: EventKind,
    /// The `eventType` (and, for classic notifications, `notificationType`) value.
    ses_name: &'static str,
    /// The key of the event's own object in the SES record.
    object_key: &'static str,
    /// `None`: the event applies to every address in `mail.destination`.
    recipients: Option<RecipientsField>,
    /// Send, Reject and Rendering Failure happen at the mail's own time; the others carry theirs.
    at_mail_time: bool,
    /// Published by classic per-identity feedback notifications too.
    classic: bool,
    /// The `aws_reports` column holding the earliest time of this type for a recipient.
    summary_column: &'static str,
}

const fn listed(array: &'static str, address: Option<&'static str>) -> Option<RecipientsField> {
    Some(RecipientsField { array, address })
}

/// In `EventKind` declaration order (`spec` relies on it; a unit test checks it).
const TABLE: [Spec; 10] = [
    Spec {
        kind: EventKind::Send,
        ses_name: "Send",
        object_key: "send",
        recipients: None,
        at_mail_time: true,
        classic: false,
        summary_column: "send_at",
    },
    Spec {
        kind: EventKind::Reject,
        ses_name: "Reject",
        object_key: "reject",
        recipients: None,
        at_mail_time: true,
        classic: false,
        summary_column: "reject_at",
    },
    Spec {
        kind: EventKind::Bounce,
        ses_name: "Bounce",
        object_key: "bounce",
        recipients: listed("bouncedRecipients", Some("emailAddress")),
        at_mail_time: false,
        classic: true,
        summary_column: "bounce_at",
    },
    Spec {
        kind: EventKind::Complaint,
        ses_name: "Complaint",
        object_key: "complaint",
        recipients: listed("complainedRecipients", Some("emailAddress")),
        at_mail_time: false,
        classic: true,
        summary_column: "complaint_at",
    },
    Spec {
        kind: EventKind::Delivery,
        ses_name: "Delivery",
        object_key: "delivery",
        recipients: listed("recipients", None),
        at_mail_time: false,
        classic: true,
        summary_column: "delivery_at",
    },
    Spec {
        kind: EventKind::Open,
        ses_name: "Open",
        object_key: "open",
        recipients: None,
        at_mail_time: false,
        classic: false,
        summary_column: "open_at",
    },
    Spec {
        kind: EventKind::Click,
        ses_name: "Click",
        object_key: "click",
        recipients: None,
        at_mail_time: false,
        classic: false,
        summary_column: "click_at",
    },
    Spec {
        kind: EventKind::RenderingFailure,
        ses_name: "Rendering Failure",
        object_key: "failure",
        recipients: None,
        at_mail_time: true,
        classic: false,
        summary_column: "rendering_failure_at",
    },
    Spec {
        kind: EventKind::DeliveryDelay,
        ses_name: "DeliveryDelay",
        object_key: "deliveryDelay",
        recipients: listed("delayedRecipients", Some("emailAddress")),
        at_mail_time: false,
        classic: false,
        summary_column: "delivery_delay_at",
    },
    Spec {
        kind: EventKind::Subscription,
        ses_name: "Subscription",
        object_key: "subscription",
        recipients: None,
        at_mail_time: false,
        classic: false,
        summary_column: "subscription_at",
    },
];

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Send,
        EventKind::Reject,
        EventKind::Bounce,
        EventKind::Complaint,
        EventKind::Delivery,
        EventKind::Open,
        EventKind::Click,
        EventKind::RenderingFailure,
        EventKind::DeliveryDelay,
        EventKind::Subscription,
    ];

    fn spec(self) -> &'static Spec {
        &TABLE[self as usize]
    }

    /// The `eventType` / `notificationType` value.
    pub fn ses_name(self) -> &'static str {
        self.spec().ses_name
    }

    /// The event type of an event-publishing record's `eventType`.
    pub fn from_ses_name(name: &str) -> Option<EventKind> {
        TABLE.iter().find(|s| s.ses_name == name).map(|s| s.kind)
    }

    /// The event type of a classic notification's `notificationType` (Bounce, Complaint, Delivery).
    pub fn from_classic_name(name: &str) -> Option<EventKind> {
        TABLE
            .iter()
            .find(|s| s.classic && s.ses_name == name)
            .map(|s| s.kind)
    }

    /// The key of the event's own object in the SES record.
    pub fn object_key(self) -> &'static str {
        self.spec().object_key
    }

    /// Where the event's own recipients are listed, for the types that list them; the others
    /// apply to every address in `mail.destination`.
    pub fn recipients_field(self) -> Option<RecipientsField> {
        self.spec().recipients
    }

    /// Whether the event happened at the mail's own time (`mail.timestamp`) rather than at a time
    /// of its own in its object.
    pub fn at_mail_time(self) -> bool {
        self.spec().at_mail_time
    }

    /// The `aws_reports` column with the earliest time of this type for a recipient.
    pub fn summary_column(self) -> &'static str {
        self.spec().summary_column
    }

    /// `'Send', 'Reject', ...`: every type's SES name as a SQL list, for `event_type IN (...)`.
    pub fn sql_list() -> String {
        TABLE
            .iter()
            .map(|s| format!("'{}'", s.ses_name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ses_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_declaration_order_and_names_are_unique() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].kind, *kind);
            assert_eq!(EventKind::from_ses_name(kind.ses_name()), Some(*kind));
        }
        let mut keys: Vec<_> = TABLE.iter().map(|s| s.object_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10);
    }

    #[test]
    fn classic_notifications_carry_three_types() {
        let classic: Vec<_> = ["Bounce", "Complaint", "Delivery", "Send", "Open"]
            .iter()
            .filter_map(|n| EventKind::from_classic_name(n))
            .collect();
        assert_eq!(
            classic,
            [EventKind::Bounce, EventKind::Complaint, EventKind::Delivery]
        );
        assert_eq!(EventKind::RenderingFailure.object_key(), "failure");
        assert!(EventKind::Reject.at_mail_time());
        assert!(!EventKind::Open.at_mail_time());
    }

    #[test]
    fn the_sql_list_names_all_ten_in_ses_spelling() {
        let list = EventKind::sql_list();
        assert_eq!(list.matches('\'').count(), 20);
        assert!(list.contains("'Rendering Failure'"));
    }
}
