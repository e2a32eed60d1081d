//! Prometheus metrics for node_exporter's textfile collector: the text exposition format,
//! written atomically (a temporary file in the same directory, then a rename), so the collector
//! never reads half a file.
//!
//! Naming follows Prometheus's conventions (https://prometheus.io/docs/practices/naming/): the
//! `ses_report_` prefix, base units in the name (`_seconds`), `_timestamp_seconds` for Unix times,
//! gauges for values of the last run (not counters, which would need `_total` and never go down).
//! `ingest` and `stats` may share one file: each rewrites only its own metric families and keeps
//! the other's.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// One metric family: a name, its help text, and its samples (labels, value).
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Family {
    pub fn gauge(name: &str, help: &str) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            samples: Vec::new(),
        }
    }

    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Family {
        self.add(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        );
        self
    }

    pub fn add(&mut self, labels: Vec<(String, String)>, value: f64) {
        self.samples.push((labels, value));
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A label name from free text (`tag:campaign` -> `tag_campaign`): `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn label_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The text exposition format of `families`.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help.replace('\n', " "));
        let _ = writeln!(out, "# TYPE {} gauge", f.name);
        for (labels, value) in &f.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {}", f.name, number(*value));
            } else {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = writeln!(out, "{}{{{}}} {}", f.name, labels.join(","), number(*value));
            }
        }
    }
    out
}

/// The families of an existing file, as text blocks by name (a block runs from its `# HELP`
/// line to the next one).
fn blocks(existing: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in existing.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            blocks.push((name, String::new()));
        }
        if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    blocks
}

/// `own` rendered after the families of `existing` that `own` does not name.
pub fn merge(existing: &str, own: &[Family]) -> String {
    let mut out = String::new();
    for (name, text) in blocks(existing) {
        if !own.iter().any(|f| f.name == name) {
            out.push_str(&text);
        }
    }
    out.push_str(&render(own));
    out
}

/// The value of an unlabelled sample in an existing file.
pub fn previous_value(existing: &str, name: &str) -> Option<f64> {
    existing.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        // `name value`, or `name{labels} value` (a partition worker's file).
        let value = match rest.strip_prefix('{') {
            Some(labelled) => labelled.rsplit_once("} ")?.1,
            None => rest.strip_prefix(' ')?,
        };
        value.trim().parse().ok()
    })
}

/// Rewrites this command's families in the textfile at `path`, keeping the other command's:
/// `families` gets the file's current text (for values carried over). A failure is a warning:
/// monitoring never fails the command it reports on.
///
/// Read, merge and replace happen under an exclusive lock on the file's directory (`flock`, which
/// leaves no file behind for the collector to see), so an ingest and a `stats` finishing at the
/// same moment cannot each write the file as it was before the other and lose its families.
pub fn update_file(path: &Path, families: impl FnOnce(&str) -> Vec<Family>) {
    let dir = directory_of(path);
    let lock = std::fs::File::open(dir).and_then(|d| d.lock().map(|()| d));
    if let Err(e) = &lock {
        log::warn!(
            "cannot lock {} to update the metrics file (writing it anyway): {e}",
            dir.display()
        );
    }
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let own = families(&existing);
    if let Err(e) = write_atomically(path, &merge(&existing, &own)) {
        log::warn!("cannot write the metrics file {}: {e}", path.display());
    }
    drop(lock);
}

fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `text` to `path` atomically: a temporary file beside it, flushed, then renamed.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = directory_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics.prom".into());
    // Not ending in .prom: the collector ignores it while it is being written.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_escaped_labels() {
        let families = [
            Family::gauge("ses_report_last_exit_code", "Exit code of the last ingest.")
                .with(&[], 3.0),
            Family::gauge("ses_report_bounce_rate", "Bounce rate.")
                .with(&[("source", "Shop \"news\" <a\\b>")], 0.0625),
        ];
        assert_eq!(
            render(&families),
            "# HELP ses_report_last_exit_code Exit code of the last ingest.\n\
             # TYPE ses_report_last_exit_code gauge\n\
             ses_report_last_exit_code 3\n\
             # HELP ses_report_bounce_rate Bounce rate.\n\
             # TYPE ses_report_bounce_rate gauge\n\
             ses_report_bounce_rate{source=\"Shop \\\"news\\\" <a\\\\b>\"} 0.0625\n"
        );
    }

    /// Two writers at once (an ingest and a `stats`) each adding families: none is lost.
    #[test]
    fn writers_at_the_same_moment_keep_each_others_families() {
        let dir = std::env::temp_dir().join(format!("metrics-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ses_report.prom");
        let writers: Vec<_> =
            ["ingest", "stats"]
                .into_iter()
                .map(|who| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        for i in 0..60 {
                            update_file(&path, |_| {
                                vec![Family::gauge(&format!("ses_report_{who}_{i}"), "x")
                                    .with(&[], 1.0)]
                            });
                        }
                    })
                })
                .collect();
        for w in writers {
            w.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for who in ["ingest", "stats"] {
            for i in 0..60 {
                assert!(
                    text.contains(&format!("ses_report_{who}_{i} 1")),
                    "{who} {i}"
                );
            }
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn merging_keeps_the_other_commands_families() {
        let ingest = render(&[
            Family::gauge("ses_report_last_exit_code", "x").with(&[], 0.0),
            Family::gauge("ses_report_bounce_rate", "old").with(&[], 0.5),
        ]);
        let merged = merge(
            &ingest,
            &[Family::gauge("ses_report_bounce_rate", "new").with(&[], 0.25)],
        );
        assert!(merged.contains("ses_report_last_exit_code 0\n"));
        assert!(merged.contains("ses_report_bounce_rate 0.25\n"));
        assert!(!merged.contains("0.5"));
        assert_eq!(
            previous_value(&merged, "ses_report_last_exit_code"),
            Some(0.0)
        );
        assert_eq!(previous_value(&merged, "ses_report_last"), None);
    }

    #[test]
    fn label_names_are_legal() {
        assert_eq!(label_name("tag:campaign"), "tag_campaign");
        assert_eq!(label_name("mailbox_provider"), "mailbox_provider");
        assert_eq!(label_name("9x"), "_9x");
    }

    #[test]
    fn files_are_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("ses_report_metrics_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ses_report.prom");
        write_atomically(&path, "a 1\n").unwrap();
        write_atomically(&path, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
