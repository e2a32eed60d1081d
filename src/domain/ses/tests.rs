use super::*;
use serde_json::json;
use time::macros::datetime;

fn envelope(message: Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "sns-1",
        "Timestamp": "2026-11-27T13:42:12.183Z",
        "Subject": null,
        "Message": message.to_string(),
    })
}

fn mail() -> Value {
    json!({
        "timestamp": "2026-11-27T13:40:00.000Z",
        "messageId": "ses-1",
        "source": "Shop <shop@example.com>",
        "destination": ["Alice@Example.com", "bob@example.com"],
        "headers": [{"name": "user_id", "value": "42"}, {"name": "Report_Type", "value": "3"}],
        "commonHeaders": {"subject": "Your order"}
    })
}

fn event(document: &Value) -> SesEvent {
    match interpret(document, "fallback").unwrap() {
        Interpretation::Event(e) => *e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn error(document: &Value) -> RecordError {
    interpret(document, "fallback").unwrap_err()
}

#[test]
fn every_event_type_takes_its_own_time_and_recipients() {
    let cases = [
        (
            "Send",
            json!({"send": {}}),
            "2026-11-27T13:40:00Z",
            vec!["alice@example.com", "bob@example.com"],
        ),
        (
            "Reject",
            json!({"reject": {"reason": "Bad content"}}),
            "2026-11-27T13:40:00Z",
            vec!["alice@example.com", "bob@example.com"],
        ),
        (
            "Rendering Failure",
            json!({"failure": {"templateName": "t", "errorMessage": "e"}}),
            "2026-11-27T13:40:00Z",
            vec!["alice@example.com", "bob@example.com"],
        ),
        (
            "Open",
            json!({"open": {"timestamp": "2026-11-27T15:00:00Z", "ipAddress": "1.2.3.4"}}),
            "2026-11-27T15:00:00Z",
            vec!["alice@example.com", "bob@example.com"],
        ),
        (
            "Click",
            json!({"click": {"timestamp": "2026-11-27T15:01:00Z", "link": "https://x"}}),
            "2026-11-27T15:01:00Z",
            vec!["alice@example.com", "bob@example.com"],
        ),
        (
            "Subscription",
            json!({"subscription": {"timestamp": "2026-11-27T15:02:00Z", "contactList": "l"}}),
            "2026-11-27T15:02:00Z",
            vec!["alice@example.com", "bob@example.com"],
        ),
        (
            "Delivery",
            json!({"delivery": {"timestamp": "2026-11-27T13:41:00Z", "recipients": ["BOB@example.com"]}}),
            "2026-11-27T13:41:00Z",
            vec!["bob@example.com"],
        ),
        (
            "Bounce",
            json!({"bounce": {"timestamp": "2026-11-27T13:41:30Z", "bounceType": "Permanent", "feedbackId": "fb-1", "bouncedRecipients": [{"emailAddress": "alice@example.com", "status": "5.1.1"}]}}),
            "2026-11-27T13:41:30Z",
            vec!["alice@example.com"],
        ),
        (
            "Complaint",
            json!({"complaint": {"timestamp": "2026-11-27T16:00:00Z", "feedbackId": "fb-2", "complainedRecipients": [{"emailAddress": "bob@example.com"}]}}),
            "2026-11-27T16:00:00Z",
            vec!["bob@example.com"],
        ),
        (
            "DeliveryDelay",
            json!({"deliveryDelay": {"timestamp": "2026-11-27T14:00:00Z", "delayType": "MailboxFull", "delayedRecipients": [{"emailAddress": "alice@example.com"}]}}),
            "2026-11-27T14:00:00Z",
            vec!["alice@example.com"],
        ),
    ];
    for (name, object, at, recipients) in cases {
        let mut record = object.as_object().unwrap().clone();
        record.insert("eventType".into(), json!(name));
        record.insert("mail".into(), mail());
        let e = event(&envelope(Value::Object(record)));
        assert_eq!(e.kind.ses_name(), name);
        assert_eq!(e.dialect, Dialect::EventPublishing);
        assert_eq!(e.occurred_at, timestamps::parse(at).unwrap(), "{name}");
        assert_eq!(e.recipients, recipients, "{name}");
        assert_eq!(e.message_id, "ses-1");
        assert_eq!(e.notification_id, "sns-1");
        assert_eq!(e.published_at, Some(datetime!(2026-11-27 13:42:12.183 UTC)));
    }
}

#[test]
fn classic_notifications_map_like_events() {
    let record = json!({
        "notificationType": "Bounce",
        "mail": {"timestamp": "2018-10-08T14:05:40Z", "messageId": "m", "source": "a@b.c",
                 "sourceIp": "1.1.1.1", "destination": ["x@y.z"]},
        "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull", "feedbackId": "fb",
                   "timestamp": "2018-10-08T14:05:45 +0000",
                   "bouncedRecipients": [{"emailAddress": "x@y.z"}]}
    });
    let e = event(&envelope(record));
    assert_eq!((e.kind, e.dialect), (EventKind::Bounce, Dialect::Classic));
    assert_eq!(e.occurred_at, datetime!(2018-10-08 14:05:45 UTC));
    assert_eq!(e.bounce_type, Some(BounceType::Transient));
    assert_eq!(e.feedback_id.as_deref(), Some("fb"));
    assert_eq!(e.header_user_id, None);
    assert_eq!(e.report_type, 0);
    assert_eq!(e.subject, None);
}

#[test]
fn headers_give_user_and_report_type() {
    let record = json!({"eventType": "Send", "send": {}, "mail": mail()});
    let e = event(&envelope(record));
    assert_eq!(e.header_user_id, Some(42));
    assert_eq!(e.report_type, 3);
    assert_eq!(e.first_destination, "alice@example.com");
    assert_eq!(e.source.as_deref(), Some("Shop <shop@example.com>"));
    assert_eq!(e.subject.as_deref(), Some("Your order"));
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn bad_headers_are_ignored_with_a_warning() {
    let mut m = mail();
    m["headers"] =
        json!([{"name": "user_id", "value": "42abc"}, {"name": "report_type", "value": "x"}]);
    let e = event(&envelope(json!({"eventType": "Send", "mail": m})));
    assert_eq!(e.header_user_id, None);
    assert_eq!(e.report_type, 0);
    assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);
}

#[test]
fn message_may_be_a_parsed_subdocument() {
    let mut doc = envelope(json!({}));
    doc["Message"] = json!({"eventType": "Send", "mail": mail()});
    assert_eq!(event(&doc).kind, EventKind::Send);
}

#[test]
fn timestamp_may_be_a_bson_date_in_extended_json() {
    let mut doc = envelope(json!({"eventType": "Send", "mail": mail()}));
    doc["Timestamp"] = json!({"$date": "2026-11-27T13:42:12.183Z"});
    assert_eq!(
        event(&doc).published_at,
        Some(datetime!(2026-11-27 13:42:12.183 UTC))
    );
    doc["Timestamp"] = json!({"$date": {"$numberLong": "1795786932183"}});
    assert!(event(&doc).published_at.is_some());
}

#[test]
fn non_events_are_skips() {
    let mut confirm = envelope(json!({}));
    confirm["Type"] = json!("SubscriptionConfirmation");
    assert!(matches!(
        interpret(&confirm, "f").unwrap(),
        Interpretation::Skip(Skip::NotANotification(_))
    ));
    let mut validation = envelope(json!({}));
    validation["Message"] =
        json!("Successfully validated SNS topic for Amazon SES event publishing.");
    assert_eq!(
        interpret(&validation, "f").unwrap(),
        Interpretation::Skip(Skip::TopicValidation)
    );
    let succeeded =
        envelope(json!({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}));
    assert_eq!(
        interpret(&succeeded, "f").unwrap(),
        Interpretation::Skip(Skip::SubscriptionSucceeded)
    );
}

#[test]
fn bare_firehose_records_use_the_fallback_id() {
    let record = json!({"eventType": "Send", "send": {}, "mail": mail()});
    let e = match interpret(&record, "sha256:abc").unwrap() {
        Interpretation::Event(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.notification_id, "sha256:abc");
    assert_eq!(e.published_at, None);
    assert_eq!(e.window_time(), datetime!(2026-11-27 13:40 UTC));
}

#[test]
fn bad_input_is_named() {
    let mut not_json = envelope(json!({}));
    not_json["Message"] = json!("{oops");
    let e = error(&not_json);
    assert_eq!(e.notification_id, "sns-1");
    assert!(e.reason.contains("Message is not JSON"), "{e}");

    assert!(error(&envelope(json!([1, 2])))
        .reason
        .contains("not an SES record"));
    assert!(error(&envelope(json!({"eventType": "Send"})))
        .reason
        .contains("no mail"));
    assert!(
        error(&envelope(json!({"eventType": "Teleport", "mail": mail()})))
            .reason
            .contains("unknown eventType \"Teleport\"")
    );
    assert!(error(&envelope(
        json!({"notificationType": "Received", "mail": mail()})
    ))
    .reason
    .contains("unknown notificationType"));

    let mut m = mail();
    m.as_object_mut().unwrap().remove("messageId");
    assert!(error(&envelope(json!({"eventType": "Send", "mail": m})))
        .reason
        .contains("mail.messageId is missing"));
    let mut m = mail();
    m.as_object_mut().unwrap().remove("destination");
    assert!(error(&envelope(json!({"eventType": "Send", "mail": m})))
        .reason
        .contains("mail.destination is missing"));
    let mut m = mail();
    m["destination"] = json!(["ok@x.y", "  "]);
    assert!(error(&envelope(json!({"eventType": "Send", "mail": m})))
        .reason
        .contains("empty address"));

    let bad_time = json!({"eventType": "Open", "mail": mail(), "open": {"timestamp": "soon"}});
    let e = error(&envelope(bad_time));
    assert!(
        e.reason.contains("open.timestamp") && e.reason.contains("soon"),
        "{e}"
    );

    let mut no_id = envelope(json!({"eventType": "Send", "mail": mail()}));
    no_id.as_object_mut().unwrap().remove("MessageId");
    let e = error(&no_id);
    assert_eq!(e.notification_id, "fallback");
    assert!(e.reason.contains("no MessageId"));

    let mut no_ts = envelope(json!({"eventType": "Send", "mail": mail()}));
    no_ts.as_object_mut().unwrap().remove("Timestamp");
    assert!(error(&no_ts).reason.contains("no Timestamp"));

    let year_zero =
        json!({"eventType": "Open", "mail": mail(), "open": {"timestamp": "0000-01-01T00:00:00Z"}});
    assert!(error(&envelope(year_zero))
        .reason
        .contains("outside the storable years"));
}

#[test]
fn long_fields_are_truncated_with_a_warning() {
    let mut m = mail();
    m["commonHeaders"]["subject"] = json!("s".repeat(2000));
    let e = event(&envelope(json!({"eventType": "Send", "mail": m})));
    assert_eq!(e.subject.as_ref().unwrap().chars().count(), widths::SUBJECT);
    assert!(e.warnings.iter().any(|w| w.contains("subject")));
}

#[test]
fn addresses_are_normalised_and_distinct() {
    let mut m = mail();
    m["destination"] = json!(["a@x.y", "A@X.Y", "b@x.y"]);
    let e = event(&envelope(json!({"eventType": "Send", "mail": m})));
    assert_eq!(e.recipients, vec!["a@x.y", "b@x.y"]);
}

#[test]
fn bounce_types_rank_permanent_first() {
    assert!(BounceType::Permanent > BounceType::Transient);
    assert!(BounceType::Transient > BounceType::Undetermined);
    assert_eq!(
        BounceType::from_ses("Something new"),
        BounceType::Undetermined
    );
}

/// Any JSON value, for property tests.
pub(crate) fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("2026-11-27T10:00:00Z")),
        Just(json!("0000-01-01T00:00:00Z")),
        Just(json!("  ")),
        Just(json!("Permanent")),
        Just(json!("user_id")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The fast path must give exactly what the general path gives (`parsers_disagree`). With
/// `well_formed`, it may step aside only where the general path has something to say (an
/// error, a warning, a skip). Returns whether the fast path answered.
fn assert_paths_agree(text: &str, well_formed: bool) -> bool {
    let (disagreement, declined) = parsers_disagree(text);
    if let Some(d) = disagreement {
        panic!("{d}");
    }
    if declined && well_formed {
        let published = Some(datetime!(2026-11-27 13:42:12.183 UTC));
        let value: Value = serde_json::from_str(text).unwrap();
        if let Ok(Interpretation::Event(event)) =
            interpret_record(value.as_object().unwrap(), "n-1", published)
        {
            assert!(
                !event.warnings.is_empty(),
                "the fast path declined a well-formed record: {text}"
            );
        }
    }
    !declined
}

#[test]
fn fast_and_general_paths_agree_on_generated_days() {
    let (mut checked, mut fast_taken) = (0, 0);
    for seed in 1..4 {
        let plan = ses_fixtures::Plan {
            notifications: 2000,
            day: time::macros::date!(2026 - 11 - 27),
            seed,
            users: 50,
            string_timestamps_percent: 0.0,
            malformed: 6,
        };
        let mut out = Vec::new();
        ses_fixtures::generate(&plan, &mut out).unwrap();
        for line in String::from_utf8(out).unwrap().lines() {
            let envelope: Value = serde_json::from_str(line).unwrap();
            if let Some(text) = envelope["Message"].as_str() {
                if serde_json::from_str::<Value>(text)
                    .map(|v| v.is_object())
                    .unwrap_or(false)
                {
                    if assert_paths_agree(text, true) {
                        fast_taken += 1;
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
    // Nearly every generated record is well formed: the fast path must be the one answering.
    assert!(
        fast_taken * 100 >= checked * 95,
        "{fast_taken} of {checked}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

    /// Whatever one field of a good record is replaced with, the fast path either steps aside or
    /// agrees with the general path.
    #[test]
    fn fast_and_general_paths_agree_on_mutations(path in 0usize..16, value in json_value()) {
        let mut record = json!({
            "eventType": "Bounce",
            "notificationType": "Bounce",
            "mail": {"timestamp": "2026-11-27T10:00:00Z", "messageId": "m", "source": "s@x", "destination": ["A@x.org", "b@x.org"],
                     "headers": [{"name": "user_id", "value": "7"}, {"name": "report_type", "value": 2}], "commonHeaders": {"subject": "s"}},
            "bounce": {"timestamp": "2026-11-27T10:00:01Z", "bounceType": "Permanent", "feedbackId": "f",
                       "bouncedRecipients": [{"emailAddress": "a@x.org"}]}
        });
        let slots = [
            "/eventType", "/notificationType", "/mail", "/mail/timestamp", "/mail/messageId", "/mail/destination",
            "/mail/destination/0", "/mail/headers", "/mail/headers/0/value", "/mail/headers/1", "/mail/commonHeaders",
            "/bounce", "/bounce/timestamp", "/bounce/bounceType", "/bounce/bouncedRecipients",
            "/bounce/bouncedRecipients/0/emailAddress",
        ];
        if let Some(slot) = record.pointer_mut(slots[path]) {
            *slot = value;
        }
        let _ = assert_paths_agree(&record.to_string(), false);
    }
}

/// The generator (a dev crate of its own) makes what it promises, as this parser reads it.
#[test]
fn a_generated_day_has_every_event_type_both_dialects_and_duplicates() {
    let plan = ses_fixtures::Plan {
        notifications: 3000,
        day: time::macros::date!(2026 - 11 - 27),
        seed: 7,
        users: 50,
        string_timestamps_percent: 20.0,
        malformed: 6,
    };
    let mut out = Vec::new();
    ses_fixtures::generate(&plan, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut kinds = std::collections::HashSet::new();
    let mut classic = 0;
    let mut ids = std::collections::HashSet::new();
    let mut repeats = 0;
    let mut failures = 0;
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap();
        if !ids.insert(value["MessageId"].to_string()) {
            repeats += 1;
        }
        match interpret(&value, "f") {
            Ok(Interpretation::Event(e)) => {
                kinds.insert(e.kind);
                classic += usize::from(e.dialect == Dialect::Classic);
            }
            Ok(Interpretation::Skip(_)) => {}
            Err(_) => failures += 1,
        }
    }
    assert_eq!(kinds.len(), EventKind::ALL.len(), "{kinds:?}");
    assert!(classic > 0);
    assert!(repeats > 0);
    assert_eq!(failures, 6);
}

#[test]
fn rfc_5321_lengths_bound_each_part_of_an_address() {
    let local = |n: usize| format!("{}@x.org", "l".repeat(n));
    assert_eq!(rfc5321_excess(&local(64)), None);
    assert_eq!(
        rfc5321_excess(&local(65)),
        Some("local part over 64 octets")
    );
    let domain = |n: usize| format!("a@{}", "d".repeat(n));
    assert_eq!(rfc5321_excess(&domain(252)), None);
    assert_eq!(
        rfc5321_excess(&domain(253)),
        Some("address over 254 octets")
    );
    assert_eq!(rfc5321_excess(&domain(256)), Some("domain over 255 octets"));
    // Both parsers refuse it: the fast one steps aside, the general one names it.
    let long = domain(300);
    let e = error(&envelope(json!({"eventType": "Send", "mail": {
        "timestamp": "2026-11-27T10:00:00Z", "messageId": "m", "destination": [long]}, "send": {}})));
    assert!(e.reason.contains("RFC 5321"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]

    /// Text serde_json's `Value` refuses, hidden in a field neither parser keeps: a lone
    /// surrogate, a number out of f64's range, nesting past serde_json's limit. The fast path
    /// must step aside as the general one fails.
    #[test]
    fn the_fast_path_refuses_what_serde_refuses_in_skipped_fields(
        place in 0usize..3,
        fragment in 0usize..6,
        depth in 100usize..140,
    ) {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let fragments = [
            "\"\\ud800\"".to_string(),
            "\"\\udfff tail\"".to_string(),
            "1e400".to_string(),
            format!("-{}", "9".repeat(400)),
            nested,
            "\"\\ud83d\\ude00 fine\"".to_string(),
        ];
        let extra = format!("\"extra\": {}, ", fragments[fragment]);
        let mail = "\"mail\": {\"timestamp\": \"2026-11-27T10:00:00Z\", \"messageId\": \"m\", \"destination\": [\"a@x.org\"]}";
        let text = match place {
            0 => format!("{{{extra}\"eventType\": \"Send\", {mail}, \"send\": {{}}}}"),
            1 => format!("{{\"eventType\": \"Open\", {}, \"open\": {{\"timestamp\": \"2026-11-27T10:00:01Z\"}}}}", mail.replacen("{", &format!("{{{extra}"), 1)),
            _ => format!("{{\"eventType\": \"Open\", {mail}, \"open\": {{{extra}\"timestamp\": \"2026-11-27T10:00:01Z\"}}}}"),
        };
        let (disagreement, _) = parsers_disagree(&text);
        proptest::prop_assert!(disagreement.is_none(), "{}", disagreement.unwrap_or_default());
    }
}

#[test]
fn record_faults_have_a_kind_and_a_detail() {
    let fault =
        |record: Value| interpret_record(record.as_object().unwrap(), "n-1", None).unwrap_err();
    let m = mail();
    let f = fault(json!({"eventType": "Teleport", "mail": m}));
    assert_eq!(
        (f.kind, f.detail.as_str()),
        (FaultKind::Unknown, "unknown eventType \"Teleport\"")
    );
    assert_eq!(fault(json!({"eventType": "Send"})).kind, FaultKind::Missing);
    assert_eq!(
        fault(json!({"eventType": 5, "mail": m})).kind,
        FaultKind::WrongType
    );
    let mut empty = m.clone();
    empty["destination"] = json!([]);
    assert_eq!(
        fault(json!({"eventType": "Send", "mail": empty, "send": {}})).kind,
        FaultKind::Empty
    );
    let bad_time = json!({"eventType": "Open", "mail": m, "open": {"timestamp": "last tuesday"}});
    assert_eq!(fault(bad_time).kind, FaultKind::Invalid);
}

/// Found by the `parsers_agree` fuzz target in a clean-clone CI run: an integer beyond u64 in a
/// field the parsers only carry along (`processingTimeMillis`) read as a float. Without
/// serde_json's `float_roundtrip`, parsing the general path's written-back float gave a value one
/// step away from parsing the original digits, so the stored `other_info` differed by the path.
#[test]
fn numbers_beyond_u64_in_carried_fields_read_the_same_by_both_paths() {
    for number in [
        "20880000000000000001634300959",
        "18446744073709551616",
        "-9223372036854775809",
        "123456789012345678901234567890.123456789e-3",
        "0.30000000000000004",
    ] {
        let record = format!(
            r#"{{"eventType": "Delivery", "mail": {{"timestamp": "2026-11-27T10:00:00.000Z", "source": "s@x.org", "messageId": "m-1", "destination": ["a@x.org"]}}, "delivery": {{"timestamp": "2026-11-27T10:00:02.000Z", "processingTimeMillis": {number}, "recipients": ["a@x.org"], "smtpResponse": "250 OK"}}}}"#
        );
        assert_paths_agree(&record, true);
    }
}
