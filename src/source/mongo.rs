//! The MongoDB cursor over one window: the window filter, a client that fails fast, and a
//! cursor that resumes after the last `_id` it returned.

use std::rc::Rc;

use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document, RawDocumentBuf};
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Cursor};

use super::envelope::{mongo_id_of, TimestampShape};
use super::{Body, Place, RecordSource, SourceError, SourceRecord};
use crate::config::Environment;
use crate::domain::timestamps;
use crate::domain::window::Window;
use crate::error::{Error, Result, Server};
use crate::redact;

/// The filter for notifications whose SNS `Timestamp` is in `window`. Stored timestamps are BSON
/// dates or SNS ISO strings; MongoDB's comparison operators only match values of the same type
/// (type bracketing), so the filter is the `$or` of a date range and a string range. The string
/// range is correct for the SNS form only (UTC, milliseconds, `Z`), which is what SNS writes.
pub fn mongo_filter(window: &Window) -> Document {
    let date = |at| BsonDateTime::from_millis(timestamps::to_unix_millis(at));
    doc! {
        "$or": [
            { "Timestamp": { "$gte": date(window.from), "$lt": date(window.to) } },
            { "Timestamp": { "$gte": timestamps::sns(window.from), "$lt": timestamps::sns(window.to) } },
        ]
    }
}

/// What to set when the driver refused the server's certificate (rustls's words for it).
fn tls_hint(detail: &str) -> Option<String> {
    let said = |needles: &[&str]| needles.iter().any(|n| detail.contains(n));
    if said(&["UnknownIssuer", "BadSignature", "unknown issuer"]) {
        return Some("the server's TLS certificate is not signed by a CA this job trusts: set tlsCAFile=PATH in SES_REPORT_MONGO_URL to the PEM bundle of the CA that signed it (Atlas' certificates chain to public roots and need none)".into());
    }
    if said(&["NotValidForName", "not valid for name"]) {
        return Some("the server's TLS certificate does not name the host in SES_REPORT_MONGO_URL: connect by a name it holds (tlsAllowInvalidHostnames=true turns the check off)".into());
    }
    if said(&[
        "certificate expired",
        "Expired",
        "not valid yet",
        "NotValidYet",
    ]) {
        return Some("the server's TLS certificate is outside its validity dates: renew it, or check this machine's clock".into());
    }
    None
}

/// Connects and pings, so that a dead server fails the run within the connect timeout.
pub fn mongo_client(env: &Environment) -> Result<Client> {
    let fail = |doing: &str, e: mongodb::error::Error| {
        let authentication = matches!(
            e.kind.as_ref(),
            mongodb::error::ErrorKind::Authentication { .. }
        );
        let detail = mongo_plain(&e);
        Error::Unreachable {
            server: Server::Mongo,
            target: redact::url(&env.mongo_url),
            hint: if authentication {
                "check the user name and password in SES_REPORT_MONGO_URL (percent-encode special characters) and its authSource".to_string()
            } else {
                tls_hint(&detail).unwrap_or_else(|| {
                    "is the server up and reachable from here? check the hosts in SES_REPORT_MONGO_URL (and tls=true if the server takes TLS only)"
                        .to_string()
                })
            },
            detail: format!("{doing}: {detail}"),
        }
    };
    let mut options = ClientOptions::parse(&env.mongo_url).run().map_err(|e| {
        let cause = match e.kind.as_ref() {
            mongodb::error::ErrorKind::InvalidArgument { message, .. } => message.clone(),
            _ => e.to_string(),
        };
        Error::config(
            "SES_REPORT_MONGO_URL",
            format!(
                "{} is not a usable MongoDB URL ({}): {}",
                redact::url(&env.mongo_url),
                redact::scrub(&cause),
                redact::PERCENT_ENCODE
            ),
        )
    })?;
    options.server_selection_timeout = Some(env.connect_timeout);
    options.connect_timeout = Some(env.connect_timeout);
    options
        .app_name
        .get_or_insert_with(|| "ses-report".to_string());
    let client = Client::with_options(options).map_err(|e| fail("cannot set up a client", e))?;
    client
        .database(&env.mongo_db)
        .run_command(doc! { "ping": 1 })
        .run()
        .map_err(|e| fail("no answer to ping", e))?;
    Ok(client)
}

/// The notifications collection must exist: MongoDB answers a query on a missing one with no
/// documents, so a mistyped database or collection name would be a green run that reads nothing,
/// every night. The names are listed and compared here (a `listCollections` filter would do, but
/// the test stand-in ignores it).
pub fn check_collection(client: &Client, env: &Environment) -> Result<()> {
    let names = client
        .database(&env.mongo_db)
        .list_collection_names()
        .run()
        .map_err(|e| Error::Mongo {
            detail: format!(
                "listing the collections of {}: {}",
                env.mongo_db,
                redact::scrub(&e.to_string())
            ),
        })?;
    if names.contains(&env.mongo_collection) {
        return Ok(());
    }
    let mut names = names;
    names.sort();
    let found = if names.is_empty() {
        format!("database {} has no collection at all", env.mongo_db)
    } else {
        format!("{} has {}", env.mongo_db, names.join(", "))
    };
    Err(Error::config(
        "SES_REPORT_MONGO_COLLECTION",
        format!(
            "the collection {}.{} does not exist ({found}): check SES_REPORT_MONGO_DB and SES_REPORT_MONGO_COLLECTION",
            env.mongo_db, env.mongo_collection
        ),
    ))
}

/// A driver error as one plain line: for a server that did not answer, the cause the topology
/// recorded (`Connection refused (os error 111)`) rather than the whole `Topology: { ... }`
/// structure; the driver's `, labels: {}` tail dropped.
fn mongo_plain(e: &mongodb::error::Error) -> String {
    let text = match e.kind.as_ref() {
        mongodb::error::ErrorKind::ServerSelection { message, .. } => {
            match message.rsplit_once("Error: Kind: ") {
                Some((_, cause)) => format!(
                    "no server answered ({})",
                    cause.split(", labels").next().unwrap_or(cause).trim()
                ),
                None => message
                    .split(" Topology:")
                    .next()
                    .unwrap_or(message)
                    .to_string(),
            }
        }
        kind => kind.to_string(),
    };
    text.trim_end_matches(", labels: {}").to_string()
}

/// A streaming read of one window of the notifications collection, in `_id` order so that a
/// read cut short can resume after the last document it returned.
pub struct MongoSource {
    env: Environment,
    window: Window,
    batch_size: u32,
    cursor: Cursor<RawDocumentBuf>,
    namespace: Rc<str>,
    last_id: Option<Bson>,
}

impl MongoSource {
    pub fn open(env: &Environment, window: &Window, batch_size: u32) -> Result<MongoSource> {
        check_collection(&mongo_client(env)?, env)?;
        let namespace: Rc<str> = format!("{}.{}", env.mongo_db, env.mongo_collection).into();
        let cursor = open_cursor(env, window, batch_size, None).map_err(SourceError::into_error)?;
        Ok(MongoSource {
            env: env.clone(),
            window: *window,
            batch_size,
            cursor,
            namespace,
            last_id: None,
        })
    }
}

/// The window filter, and after a cut `_id > last`; sorted by `_id` (disk use allowed, for big days).
fn open_cursor(
    env: &Environment,
    window: &Window,
    batch_size: u32,
    after: Option<&Bson>,
) -> Result<Cursor<RawDocumentBuf>, SourceError> {
    let client = mongo_client(env).map_err(SourceError::Fatal)?;
    let namespace = format!("{}.{}", env.mongo_db, env.mongo_collection);
    let filter = match after {
        None => mongo_filter(window),
        Some(id) => doc! { "$and": [mongo_filter(window), { "_id": { "$gt": id.clone() } }] },
    };
    client
        .database(&env.mongo_db)
        .collection::<RawDocumentBuf>(&env.mongo_collection)
        .find(filter)
        .sort(doc! { "_id": 1 })
        .allow_disk_use(true)
        .batch_size(batch_size)
        .run()
        .map_err(|e| {
            SourceError::Transient(format!(
                "cannot query {namespace}: {}",
                redact::scrub(&e.to_string())
            ))
        })
}

impl RecordSource for MongoSource {
    /// The window's document count (the same filter; cheap with the index on Timestamp that
    /// `doctor` asks for). Asked only when a progress bar is shown.
    fn total(&mut self) -> Option<u64> {
        let client = mongo_client(&self.env).ok()?;
        client
            .database(&self.env.mongo_db)
            .collection::<RawDocumentBuf>(&self.env.mongo_collection)
            .count_documents(mongo_filter(&self.window))
            .run()
            .ok()
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>> {
        Some(match self.cursor.next()? {
            Ok(raw) => {
                if let Ok(Some(id)) = raw.get("_id") {
                    self.last_id = Bson::try_from(id.to_raw_bson()).ok();
                }
                Ok(SourceRecord {
                    place: Place::Mongo {
                        namespace: self.namespace.clone(),
                    },
                    body: Body::Bson(raw),
                })
            }
            Err(e) => Err(SourceError::Transient(format!(
                "lost the MongoDB cursor on {}: {}",
                self.namespace,
                redact::scrub(&e.to_string())
            ))),
        })
    }

    fn label(&self) -> String {
        format!("mongo {}", self.namespace)
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        self.cursor = open_cursor(
            &self.env,
            &self.window,
            self.batch_size,
            self.last_id.as_ref(),
        )?;
        Ok(())
    }
}

/// What `doctor` finds in the collection: documents per `Timestamp` shape, with example ids of
/// the shapes no window selects correctly.
#[derive(Debug, Default)]
pub struct Census {
    pub counts: std::collections::BTreeMap<TimestampShape, u64>,
    pub examples: std::collections::BTreeMap<TimestampShape, Vec<String>>,
}

/// Reads every document's `_id` and `Timestamp` (nothing else) and classifies it.
pub fn timestamp_census(env: &Environment, examples: usize) -> Result<Census> {
    let client = mongo_client(env)?;
    let namespace = format!("{}.{}", env.mongo_db, env.mongo_collection);
    let fail = |e: mongodb::error::Error| Error::Mongo {
        detail: format!("reading {namespace}: {e}"),
    };
    let cursor = client
        .database(&env.mongo_db)
        .collection::<RawDocumentBuf>(&env.mongo_collection)
        .find(doc! {})
        .projection(doc! { "_id": 1, "Timestamp": 1 })
        .batch_size(1000)
        .run()
        .map_err(fail)?;
    let mut census = Census::default();
    for document in cursor {
        let document = document.map_err(fail)?;
        let shape = TimestampShape::of(document.get("Timestamp").ok().flatten());
        *census.counts.entry(shape).or_default() += 1;
        if !shape.is_selectable() {
            let ids = census.examples.entry(shape).or_default();
            if ids.len() < examples {
                ids.push(mongo_id_of(&document));
            }
        }
    }
    Ok(census)
}

/// Whether an index of the collection starts with `Timestamp` (the window query needs one).
pub fn has_timestamp_index(env: &Environment) -> Result<bool> {
    let client = mongo_client(env)?;
    let indexes = client
        .database(&env.mongo_db)
        .collection::<Document>(&env.mongo_collection)
        .list_indexes()
        .run()
        .map_err(|e| Error::Mongo {
            detail: format!("listing the indexes: {e}"),
        })?;
    for index in indexes {
        let index = index.map_err(|e| Error::Mongo {
            detail: format!("listing the indexes: {e}"),
        })?;
        if index.keys.keys().next().map(String::as_str) == Some("Timestamp") {
            return Ok(true);
        }
    }
    Ok(false)
}
