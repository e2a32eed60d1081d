//! Rendering, and nothing else: what the reading commands (`commands/`) print or write, as an
//! aligned table, CSV, JSON, Prometheus gauges or the HTML page (`html`), from the domain's
//! figures, verdicts and suppressions; and the comparison with SES's suppression list
//! (`suppressions::reconcile`). Pure: no SQL, no I/O.

pub mod failures;
pub mod html;
pub mod stats;
pub mod suppressions;

/// Columns padded to their widest cell, two spaces apart: a table for a person at a terminal.
pub fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// CSV text (RFC 4180 quoting, by the `csv` crate) of a header and rows: the one writer behind
/// every CSV output (stats, suppressions, failures).
pub fn csv_text<I, R, C>(header: &[&str], rows: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut writer = csv::WriterBuilder::new()
        .flexible(false)
        .from_writer(Vec::new());
    // Writing into memory only fails on a row of another length: a bug, shown rather than hidden.
    let mut write = |record: csv::ByteRecord| {
        if let Err(e) = writer.write_byte_record(&record) {
            log::error!("CSV output: {e}");
        }
    };
    write(header.iter().collect());
    for row in rows {
        write(row.into_iter().collect());
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_nothing_else() {
        let text = csv_text(
            &["a", "b"],
            [
                vec!["plain".to_string(), "with, comma".to_string()],
                vec!["say \"hi\"".to_string(), "two\nlines".to_string()],
                vec![String::new(), "x".to_string()],
            ],
        );
        assert_eq!(
            text,
            "a,b\nplain,\"with, comma\"\n\"say \"\"hi\"\"\",\"two\nlines\"\n,x\n"
        );
    }
}
