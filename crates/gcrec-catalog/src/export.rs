//! A catalog's recordings as one flat table, for DuckDB, Spark or Athena: NDJSON, CSV or
//! Parquet. Streamed row by row (Parquet: one row group of at most [`ROW_GROUP`] rows
//! held at a time).
//!
//! The CSV is for engines, not spreadsheets: values are written as they are (a caller
//! number `+1…` stays `+1…`), lists are joined with `;`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde::Serialize;

use crate::{Catalog, CatalogError, sqlite};

/// Rows per Parquet row group.
pub const ROW_GROUP: usize = 65_536;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header.
    Csv,
    /// Apache Parquet (Snappy).
    Parquet,
}

/// One recording, flat.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportRow {
    /// The source it was indexed from.
    pub source: String,
    /// Organization ID.
    pub organization_id: String,
    /// Conversation ID.
    pub conversation_id: String,
    /// Recording ID.
    pub recording_id: String,
    /// The partition hour (RFC 3339).
    pub conversation_hour: String,
    /// `no_sidecar`, `no_media`, or empty.
    pub orphan: Option<String>,
    /// `valid`, `invalid` or `none`.
    pub sidecar: String,
    /// What is wrong with an invalid sidecar.
    pub problem: Option<String>,
    /// `mediaType`.
    pub media_type: Option<String>,
    /// `provider`.
    pub provider: Option<String>,
    /// `initialDirection`.
    pub initial_direction: Option<String>,
    /// `messageType`.
    pub message_type: Option<String>,
    /// `languageIds`.
    pub language_ids: Option<String>,
    /// `conversationStartTime` (RFC 3339, milliseconds).
    pub conversation_start_time: Option<String>,
    /// `conversationEndTime`.
    pub conversation_end_time: Option<String>,
    /// `startTime`.
    pub start_time: Option<String>,
    /// `endTime`.
    pub end_time: Option<String>,
    /// `durationMs`.
    pub duration_ms: Option<i64>,
    /// `aniNormalized`.
    pub ani_normalized: Option<String>,
    /// `aniDisplayable`.
    pub ani_displayable: Option<String>,
    /// `dnisNormalized`.
    pub dnis_normalized: Option<String>,
    /// `dnisDisplayable`.
    pub dnis_displayable: Option<String>,
    /// `filePath`.
    pub file_path: Option<String>,
    /// `fileSize`.
    pub file_size: Option<i64>,
    /// `userIds`.
    pub user_ids: Vec<String>,
    /// `queueIds`.
    pub queue_ids: Vec<String>,
    /// `wrapupCodes`.
    pub wrapup_codes: Vec<String>,
    /// The first media object's key.
    pub media_key: Option<String>,
    /// Its size.
    pub media_size: Option<i64>,
    /// Its ETag.
    pub media_etag: Option<String>,
    /// The sidecar's key.
    pub sidecar_key: Option<String>,
}

const SELECT: &str = "
SELECT s.uri, r.organization_id, r.conversation_id, r.recording_id, r.hour, r.orphan,
       r.sidecar_state, r.problem, r.media_type, r.provider, r.initial_direction,
       r.message_type, r.language_ids, r.conversation_start, r.conversation_end,
       r.start_time, r.end_time, r.duration_ms, r.ani_normalized, r.ani_displayable,
       r.dnis_normalized, r.dnis_displayable, r.file_path, r.file_size,
       (SELECT json_group_array(user_id) FROM recording_users WHERE recording = r.id),
       (SELECT json_group_array(queue_id) FROM recording_queues WHERE recording = r.id),
       (SELECT json_group_array(wrapup_code) FROM recording_wrapup_codes WHERE recording = r.id),
       m.key, m.size, m.etag, sc.key
FROM recordings r
JOIN sources s ON s.id = r.source_id
LEFT JOIN objects m ON m.recording = r.id AND m.role = 'media' AND m.seq = 0
LEFT JOIN objects sc ON sc.recording = r.id AND sc.role = 'sidecar' AND sc.seq = 0
ORDER BY coalesce(r.conversation_start, r.hour * 1000), r.organization_id, r.folder, r.recording_id";

fn iso_ms(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Every recording of the catalog as [`ExportRow`]s, in conversation time order, handed
/// to `each` one by one.
pub fn rows(
    path: &Path,
    each: &mut dyn FnMut(ExportRow) -> Result<(), CatalogError>,
) -> Result<u64, CatalogError> {
    let catalog = Catalog::open(path)?;
    let conn = catalog.conn();
    let mut statement = conn.prepare(SELECT).map_err(sqlite(path))?;
    let mut rows = statement.query([]).map_err(sqlite(path))?;
    let mut n = 0;
    let bad = |e: rusqlite::Error| CatalogError::Corrupt {
        path: path.to_owned(),
        what: format!("export: {e}"),
    };
    let list = |v: Option<String>| -> Result<Vec<String>, CatalogError> {
        let mut list: Vec<String> = match v {
            Some(j) => serde_json::from_str(&j).map_err(|e| CatalogError::Corrupt {
                path: path.to_owned(),
                what: format!("export: a list {j:?}: {e}"),
            })?,
            None => Vec::new(),
        };
        list.sort();
        Ok(list)
    };
    while let Some(r) = rows.next().map_err(sqlite(path))? {
        let hour: i64 = r.get(4).map_err(bad)?;
        let state: i64 = r.get(6).map_err(bad)?;
        let row = ExportRow {
            source: r.get(0).map_err(bad)?,
            organization_id: r.get(1).map_err(bad)?,
            conversation_id: r.get(2).map_err(bad)?,
            recording_id: r.get(3).map_err(bad)?,
            conversation_hour: DateTime::<Utc>::from_timestamp(hour, 0)
                .map(|t| t.format("%Y-%m-%dT%H:00:00Z").to_string())
                .unwrap_or_default(),
            orphan: r.get(5).map_err(bad)?,
            sidecar: match state {
                crate::index::SIDECAR_VALID => "valid",
                crate::index::SIDECAR_INVALID => "invalid",
                _ => "none",
            }
            .to_owned(),
            problem: r.get(7).map_err(bad)?,
            media_type: r.get(8).map_err(bad)?,
            provider: r.get(9).map_err(bad)?,
            initial_direction: r.get(10).map_err(bad)?,
            message_type: r.get(11).map_err(bad)?,
            language_ids: r.get(12).map_err(bad)?,
            conversation_start_time: iso_ms(r.get(13).map_err(bad)?),
            conversation_end_time: iso_ms(r.get(14).map_err(bad)?),
            start_time: iso_ms(r.get(15).map_err(bad)?),
            end_time: iso_ms(r.get(16).map_err(bad)?),
            duration_ms: r.get(17).map_err(bad)?,
            ani_normalized: r.get(18).map_err(bad)?,
            ani_displayable: r.get(19).map_err(bad)?,
            dnis_normalized: r.get(20).map_err(bad)?,
            dnis_displayable: r.get(21).map_err(bad)?,
            file_path: r.get(22).map_err(bad)?,
            file_size: r.get(23).map_err(bad)?,
            user_ids: list(r.get(24).map_err(bad)?)?,
            queue_ids: list(r.get(25).map_err(bad)?)?,
            wrapup_codes: list(r.get(26).map_err(bad)?)?,
            media_key: r.get(27).map_err(bad)?,
            media_size: r.get(28).map_err(bad)?,
            media_etag: r.get(29).map_err(bad)?,
            sidecar_key: r.get(30).map_err(bad)?,
        };
        each(row)?;
        n += 1;
    }
    Ok(n)
}

/// Writes the catalog's recordings to `out` (a new file, 0600) in `format`. Returns the
/// rows written.
pub fn export(path: &Path, format: Format, out: &Path) -> Result<u64, CatalogError> {
    let io = |source| CatalogError::Io {
        path: out.to_owned(),
        source,
    };
    let file = crate::create_private_file(out)?;
    let result = match format {
        Format::Ndjson => {
            let mut w = std::io::BufWriter::new(file);
            let n = rows(path, &mut |row| {
                serde_json::to_writer(&mut w, &row).map_err(|e| io(e.into()))?;
                w.write_all(b"\n").map_err(io)
            })?;
            w.into_inner()
                .map_err(|e| io(e.into_error()))?
                .sync_all()
                .map_err(io)?;
            Ok(n)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(file);
            let csv_err = |e: csv::Error| io(std::io::Error::other(e));
            w.write_record(COLUMNS).map_err(csv_err)?;
            let n = rows(path, &mut |row| {
                w.write_record(csv_record(&row)).map_err(csv_err)
            })?;
            w.into_inner()
                .map_err(|e| io(std::io::Error::other(e.to_string())))?
                .sync_all()
                .map_err(io)?;
            Ok(n)
        }
        Format::Parquet => write_parquet(path, file, out),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

/// The columns, in order, of every format.
pub const COLUMNS: [&str; 31] = [
    "source",
    "organization_id",
    "conversation_id",
    "recording_id",
    "conversation_hour",
    "orphan",
    "sidecar",
    "problem",
    "media_type",
    "provider",
    "initial_direction",
    "message_type",
    "language_ids",
    "conversation_start_time",
    "conversation_end_time",
    "start_time",
    "end_time",
    "duration_ms",
    "ani_normalized",
    "ani_displayable",
    "dnis_normalized",
    "dnis_displayable",
    "file_path",
    "file_size",
    "user_ids",
    "queue_ids",
    "wrapup_codes",
    "media_key",
    "media_size",
    "media_etag",
    "sidecar_key",
];

/// One value of a row, by column kind.
enum Cell<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Time(Option<&'a str>),
    List(&'a [String]),
}

fn cells(row: &ExportRow) -> [Cell<'_>; 31] {
    use Cell::*;
    fn t(v: &Option<String>) -> Option<&str> {
        v.as_deref()
    }
    [
        Text(Some(&row.source)),
        Text(Some(&row.organization_id)),
        Text(Some(&row.conversation_id)),
        Text(Some(&row.recording_id)),
        Time(Some(&row.conversation_hour)),
        Text(t(&row.orphan)),
        Text(Some(&row.sidecar)),
        Text(t(&row.problem)),
        Text(t(&row.media_type)),
        Text(t(&row.provider)),
        Text(t(&row.initial_direction)),
        Text(t(&row.message_type)),
        Text(t(&row.language_ids)),
        Time(t(&row.conversation_start_time)),
        Time(t(&row.conversation_end_time)),
        Time(t(&row.start_time)),
        Time(t(&row.end_time)),
        Int(row.duration_ms),
        Text(t(&row.ani_normalized)),
        Text(t(&row.ani_displayable)),
        Text(t(&row.dnis_normalized)),
        Text(t(&row.dnis_displayable)),
        Text(t(&row.file_path)),
        Int(row.file_size),
        List(&row.user_ids),
        List(&row.queue_ids),
        List(&row.wrapup_codes),
        Text(t(&row.media_key)),
        Int(row.media_size),
        Text(t(&row.media_etag)),
        Text(t(&row.sidecar_key)),
    ]
}

fn csv_record(row: &ExportRow) -> Vec<String> {
    cells(row)
        .iter()
        .map(|c| match c {
            Cell::Text(v) | Cell::Time(v) => v.unwrap_or_default().to_owned(),
            Cell::Int(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Cell::List(v) => v.join(";"),
        })
        .collect()
}

/// The Parquet schema: strings as UTF-8, times as UTC timestamps in milliseconds, lists
/// as standard three-level LISTs.
fn parquet_schema() -> String {
    let mut fields = Vec::new();
    let probe = ExportRow::default();
    for (name, cell) in COLUMNS.iter().zip(cells(&probe)) {
        fields.push(match cell {
            Cell::Text(_) => format!("optional binary {name} (UTF8);"),
            Cell::Int(_) => format!("optional int64 {name};"),
            Cell::Time(_) => format!("optional int64 {name} (TIMESTAMP(MILLIS,true));"),
            Cell::List(_) => format!(
                "optional group {name} (LIST) {{ repeated group list {{ optional binary element (UTF8); }} }}"
            ),
        });
    }
    format!("message recording {{ {} }}", fields.join(" "))
}

/// One column's buffered values and levels for a row group.
#[derive(Default)]
struct Column {
    bytes: Vec<ByteArray>,
    ints: Vec<i64>,
    def: Vec<i16>,
    rep: Vec<i16>,
}

fn write_parquet(path: &Path, file: std::fs::File, out: &Path) -> Result<u64, CatalogError> {
    let pq = |e: parquet::errors::ParquetError| CatalogError::Io {
        path: out.to_owned(),
        source: std::io::Error::other(e),
    };
    let schema = Arc::new(parse_message_type(&parquet_schema()).map_err(pq)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(pq)?;
    let mut columns: Vec<Column> = (0..COLUMNS.len()).map(|_| Column::default()).collect();
    let integers: Vec<bool> = cells(&ExportRow::default())
        .iter()
        .map(|c| matches!(c, Cell::Int(_) | Cell::Time(_)))
        .collect();
    let mut buffered = 0usize;
    let flush = |writer: &mut SerializedFileWriter<std::fs::File>,
                 columns: &mut Vec<Column>|
     -> Result<(), CatalogError> {
        let mut group = writer.next_row_group().map_err(pq)?;
        let mut i = 0;
        while let Some(mut column) = group.next_column().map_err(pq)? {
            let c = std::mem::take(&mut columns[i]);
            let rep = (!c.rep.is_empty()).then_some(c.rep.as_slice());
            if integers[i] {
                column
                    .typed::<Int64Type>()
                    .write_batch(&c.ints, Some(&c.def), rep)
                    .map_err(pq)?;
            } else {
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&c.bytes, Some(&c.def), rep)
                    .map_err(pq)?;
            }
            column.close().map_err(pq)?;
            i += 1;
        }
        group.close().map_err(pq)?;
        Ok(())
    };
    let n = rows(path, &mut |row| {
        for (column, cell) in columns.iter_mut().zip(cells(&row)) {
            match cell {
                Cell::Text(v) => {
                    column.def.push(i16::from(v.is_some()));
                    if let Some(v) = v {
                        column.bytes.push(ByteArray::from(v));
                    }
                }
                Cell::Int(v) => {
                    column.def.push(i16::from(v.is_some()));
                    column.ints.extend(v);
                }
                Cell::Time(v) => {
                    let ms = v
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_millis());
                    column.def.push(i16::from(ms.is_some()));
                    column.ints.extend(ms);
                }
                Cell::List(items) => {
                    if items.is_empty() {
                        // An empty list: the group present, no element.
                        column.def.push(1);
                        column.rep.push(0);
                    }
                    for (k, item) in items.iter().enumerate() {
                        column.def.push(3);
                        column.rep.push(i16::from(k > 0));
                        column.bytes.push(ByteArray::from(item.as_str()));
                    }
                }
            }
        }
        buffered += 1;
        if buffered == ROW_GROUP {
            flush(&mut writer, &mut columns)?;
            buffered = 0;
        }
        Ok(())
    })?;
    if buffered > 0 || n == 0 {
        flush(&mut writer, &mut columns)?;
    }
    let file = writer.into_inner().map_err(pq)?;
    file.sync_all().map_err(|source| CatalogError::Io {
        path: out.to_owned(),
        source,
    })?;
    Ok(n)
}
