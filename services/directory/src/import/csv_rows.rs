//! Turns an `ImportUsers` CSV upload into records, one row at a time.
//!
//! The upload arrives as gRPC chunks that the API reads as one blocking stream; [`CsvRows`]
//! parses that stream without ever holding more than one row (capped at [`MAX_ROW_BYTES`])
//! plus the parser's buffer. A bad header fails the whole import; a bad row
//! fails only itself, so one typo does not cost the caller the other rows.

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::{ByteRecord, ReaderBuilder};

/// A row this long is almost certainly an unclosed quote swallowing the rest of the file;
/// stopping there keeps memory flat whatever the upload holds.
pub const MAX_ROW_BYTES: u64 = 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One user as the file describes it: values trimmed, empty cells `None`. Whether the values
/// make a valid user is for the caller to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRecord {
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub fax: Option<String>,
    pub street: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// 1-based line where the row starts, as an editor shows it; the header is line 1.
    pub line: u64,
    pub record: ImportRecord,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    pub line: u64,
    pub reason: String,
}

/// The header is unusable, so no row can be read: the whole import fails (INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    ExternalId,
    Email,
    Name,
    AvatarUrl,
    CustomerId,
    CustomerName,
    Title,
    FirstName,
    LastName,
    Phone,
    Mobile,
    Fax,
    Street,
    Zip,
    City,
    Country,
    Notes,
}

/// Canonical name first, then aliases. The `user_*` and `customer_*` names are what
/// Fogbender exports, so its files import unchanged.
const COLUMNS: [(Column, &[&str]); 17] = [
    (Column::ExternalId, &["external_id", "user_id"]),
    (Column::Email, &["email", "user_email"]),
    (Column::Name, &["name", "user_name"]),
    (Column::AvatarUrl, &["avatar_url", "user_avatar_url"]),
    (Column::CustomerId, &["customer_id"]),
    (Column::CustomerName, &["customer_name"]),
    (Column::Title, &["title"]),
    (Column::FirstName, &["first_name", "firstname"]),
    (Column::LastName, &["last_name", "lastname"]),
    (Column::Phone, &["phone"]),
    (Column::Mobile, &["mobile"]),
    (Column::Fax, &["fax"]),
    (Column::Street, &["street"]),
    (Column::Zip, &["zip", "postal_code"]),
    (Column::City, &["city"]),
    (Column::Country, &["country"]),
    (Column::Notes, &["notes", "comment"]),
];

impl Column {
    fn from_header(normalised: &str) -> Option<Self> {
        COLUMNS
            .iter()
            .find(|(_, names)| names.contains(&normalised))
            .map(|(column, _)| *column)
    }

    fn canonical_name(self) -> &'static str {
        COLUMNS
            .iter()
            .find(|(column, _)| *column == self)
            .and_then(|(_, names)| names.first())
            .copied()
            .unwrap_or("?")
    }

    fn slot(self, record: &mut ImportRecord) -> &mut Option<String> {
        match self {
            Column::ExternalId => &mut record.external_id,
            Column::Email => &mut record.email,
            Column::Name => &mut record.name,
            Column::AvatarUrl => &mut record.avatar_url,
            Column::CustomerId => &mut record.customer_id,
            Column::CustomerName => &mut record.customer_name,
            Column::Title => &mut record.title,
            Column::FirstName => &mut record.first_name,
            Column::LastName => &mut record.last_name,
            Column::Phone => &mut record.phone,
            Column::Mobile => &mut record.mobile,
            Column::Fax => &mut record.fax,
            Column::Street => &mut record.street,
            Column::Zip => &mut record.zip,
            Column::City => &mut record.city,
            Column::Country => &mut record.country,
            Column::Notes => &mut record.notes,
        }
    }
}

fn known_columns() -> String {
    COLUMNS
        .iter()
        .map(|(_, names)| names.join(" or "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Spreadsheet users write "First Name" or "first-name" as readily as "first_name".
fn normalise_header(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// Reads `ImportUsers` rows from a CSV stream: a header line, then one user per row.
pub struct CsvRows<R: Read> {
    reader: csv::Reader<Source<R>>,
    /// The column each field fills, with the header text as written for messages.
    columns: Vec<(Column, String)>,
    record: ByteRecord,
    finished: bool,
}

impl<R: Read> CsvRows<R> {
    /// Reads and maps the header line. Errors: empty file, duplicate column, unknown column
    /// (message lists the known names and the 1-based column number), no identifying column
    /// (needs one of external_id/user_id or email/user_email), invalid UTF-8 in header.
    pub fn new(reader: R) -> Result<Self, HeaderError> {
        // Flexible, because a short or long row is that row's failure, not the parser's.
        let mut reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Source::new(reader));
        let mut header = ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => {
                return Err(HeaderError(
                    "the file is empty; expected a header line such as \
                     customer_name,customer_id,user_name,user_email,user_id"
                        .to_owned(),
                ));
            }
            Err(error) => {
                return Err(HeaderError(format!(
                    "could not read the header line: {error}"
                )));
            }
        }
        let end = reader.position().byte();
        reader.get_mut().row_done(end);
        let columns = map_header(&header)?;
        Ok(Self {
            reader,
            columns,
            record: ByteRecord::new(),
            finished: false,
        })
    }

    fn row(&self, line: u64) -> Result<CsvRow, RowFailure> {
        let fail = |reason: String| RowFailure { line, reason };
        if self.record.len() != self.columns.len() {
            return Err(fail(format!(
                "row has {}, header has {}",
                fields(self.record.len()),
                self.columns.len()
            )));
        }
        let mut record = ImportRecord::default();
        for (index, (bytes, (column, header))) in self.record.iter().zip(&self.columns).enumerate()
        {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                fail(format!(
                    "invalid UTF-8 in column {} ({header}); save the file as UTF-8",
                    index + 1
                ))
            })?;
            let text = text.trim();
            if !text.is_empty() {
                *column.slot(&mut record) = Some(text.to_owned());
            }
        }
        Ok(CsvRow { line, record })
    }
}

fn fields(count: usize) -> String {
    if count == 1 {
        "1 field".to_owned()
    } else {
        format!("{count} fields")
    }
}

fn map_header(header: &ByteRecord) -> Result<Vec<(Column, String)>, HeaderError> {
    let mut columns: Vec<(Column, String)> = Vec::with_capacity(header.len());
    for (index, bytes) in header.iter().enumerate() {
        let number = index + 1;
        let written = std::str::from_utf8(bytes).map_err(|_| {
            HeaderError(format!(
                "the header has invalid UTF-8 in column {number}; save the file as UTF-8"
            ))
        })?;
        let normalised = normalise_header(written);
        if normalised.is_empty() {
            return Err(HeaderError(format!(
                "column {number} of the header has no name; known columns are: {}",
                known_columns()
            )));
        }
        let column = Column::from_header(&normalised).ok_or_else(|| {
            HeaderError(format!(
                "unknown column '{}' (column {number}); known columns are: {}",
                written.trim(),
                known_columns()
            ))
        })?;
        if let Some(earlier) = columns.iter().position(|(seen, _)| *seen == column) {
            return Err(HeaderError(format!(
                "columns {} ('{}') and {number} ('{}') both set {}; keep one of them",
                earlier + 1,
                columns[earlier].1,
                written.trim(),
                column.canonical_name()
            )));
        }
        columns.push((column, written.trim().to_owned()));
    }
    let identifies = |column: Column| columns.iter().any(|(seen, _)| *seen == column);
    if !identifies(Column::ExternalId) && !identifies(Column::Email) {
        return Err(HeaderError(
            "the header needs a column that identifies users: external_id (or user_id) or \
             email (or user_email)"
                .to_owned(),
        ));
    }
    Ok(columns)
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<CsvRow, RowFailure>;

    /// A malformed row (wrong number of fields, invalid UTF-8) yields a [`RowFailure`] and the
    /// next call goes on with the next row; a read error, or a row longer than
    /// [`MAX_ROW_BYTES`], yields one failure and ends the iteration, since nothing after it
    /// can be trusted.
    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let start = self.reader.position().clone();
            let read = self.reader.read_byte_record(&mut self.record);
            // The parser dates a row from where the previous one ended, so blank lines in
            // between (and the LF of a CRLF) would make it one or more lines early.
            let line = start.line() + self.reader.get_ref().leading_newlines(start.byte());
            match read {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    return None;
                }
                Err(error) => {
                    self.finished = true;
                    return Some(Err(RowFailure {
                        line,
                        reason: read_failure(&error),
                    }));
                }
            }
            let end = self.reader.position().byte();
            self.reader.get_mut().row_done(end);
            // Spreadsheets export rows of bare separators, and a whitespace-only line is as
            // blank as an empty one, which the parser already skips.
            if self
                .record
                .iter()
                .all(|field| field.trim_ascii().is_empty())
            {
                continue;
            }
            return Some(self.row(line));
        }
        None
    }
}

fn read_failure(error: &csv::Error) -> String {
    if let csv::ErrorKind::Io(io_error) = error.kind()
        && let Some(too_long) = io_error
            .get_ref()
            .and_then(|e| e.downcast_ref::<RowTooLong>())
    {
        return too_long.to_string();
    }
    format!("could not read the file: {error}")
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the row is longer than {MAX_ROW_BYTES} bytes; a quote is probably left open, so the rest \
     of the file was not read"
)]
struct RowTooLong;

/// What the CSV parser reads from: strips a leading BOM, caps the bytes one row may take, and
/// keeps the raw bytes of the row being read so its first line can be worked out.
///
/// The BOM goes here, before parsing, because a quoted first header name (`"email"`) after a
/// BOM would otherwise not parse as quoted.
struct Source<R> {
    inner: R,
    bom_checked: bool,
    /// Bytes read while looking for a BOM that were not one; served before `inner`.
    prefix: Vec<u8>,
    budget: u64,
    /// Everything handed to the parser since the end of the last row.
    window: VecDeque<u8>,
    window_start: u64,
}

impl<R: Read> Source<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            bom_checked: false,
            prefix: Vec::new(),
            budget: MAX_ROW_BYTES,
            window: VecDeque::new(),
            window_start: 0,
        }
    }

    /// Forgets the bytes up to `end` (stream offset after the BOM) and refills the budget.
    fn row_done(&mut self, end: u64) {
        let consumed = end.saturating_sub(self.window_start);
        let consumed = usize::try_from(consumed)
            .unwrap_or(usize::MAX)
            .min(self.window.len());
        self.window.drain(..consumed);
        self.window_start += consumed as u64;
        self.budget = MAX_ROW_BYTES;
    }

    /// Line breaks at `offset` before any other byte: the blank lines the parser skipped.
    fn leading_newlines(&self, offset: u64) -> u64 {
        let skip = usize::try_from(offset.saturating_sub(self.window_start)).unwrap_or(usize::MAX);
        let count = self
            .window
            .iter()
            .skip(skip)
            .take_while(|byte| matches!(byte, b'\r' | b'\n'))
            .filter(|byte| **byte == b'\n')
            .count();
        count as u64
    }

    fn check_bom(&mut self) -> io::Result<()> {
        // The BOM may be split across reads, e.g. by a client that sends tiny chunks.
        let mut start = [0_u8; 3];
        let mut filled = 0;
        while filled < start.len() {
            let n = self.inner.read(&mut start[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if &start[..filled] != UTF8_BOM {
            self.prefix.extend_from_slice(&start[..filled]);
        }
        self.bom_checked = true;
        Ok(())
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.bom_checked {
            self.check_bom()?;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.budget == 0 {
            return Err(io::Error::other(RowTooLong));
        }
        let limit = buf
            .len()
            .min(usize::try_from(self.budget).unwrap_or(usize::MAX));
        let n = if self.prefix.is_empty() {
            self.inner.read(&mut buf[..limit])?
        } else {
            let n = self.prefix.len().min(limit);
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            n
        };
        self.budget -= n as u64;
        self.window.extend(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::mpsc::Receiver;

    /// Blocking `std::io::Read` over chunks that arrive on a channel (as an upload does); EOF
    /// when the sender is dropped.
    ///
    /// EOF cannot tell a finished upload from an abandoned one: the sending side must report a
    /// broken stream itself rather than rely on the parser noticing.
    struct ChunkReader {
        rx: Receiver<Vec<u8>>,
        chunk: Vec<u8>,
        offset: usize,
    }

    impl ChunkReader {
        fn new(rx: Receiver<Vec<u8>>) -> Self {
            Self {
                rx,
                chunk: Vec::new(),
                offset: 0,
            }
        }
    }

    impl Read for ChunkReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if buf.is_empty() {
                return Ok(0);
            }
            // Loops because an empty chunk must not read as EOF.
            while self.offset >= self.chunk.len() {
                match self.rx.recv() {
                    Ok(chunk) => {
                        self.chunk = chunk;
                        self.offset = 0;
                    }
                    Err(_) => return Ok(0),
                }
            }
            let available = &self.chunk[self.offset..];
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            self.offset += n;
            Ok(n)
        }
    }

    use super::*;
    use std::sync::mpsc;
    use std::thread;

    const FOGBENDER_SAMPLE: &str = "\
customer_name,customer_id,user_name,user_email,user_id
USS Enterprise,uss001,Captain Kirk,captain.kirk@example.com,k001
USS Enterprise,uss001,Spock,spock@example.com,k002
Millennium Falcon,mil001,Han Solo,han.solo@example.com,s001
Millennium Falcon,mil001,Chewbacca,chewbacca@example.com,s002
Planet Express,px002,Philip J. Fry,fry@example.com,f001
Planet Express,px002,Turanga Leela,leela@example.com,f002
Cyberdyne Systems,cs010,Sarah Connor,sarah.connor@example.com,t001
Cyberdyne Systems,cs010,John Connor,john.connor@example.com,t002
Tyrell Corporation,tyr007,Rick Deckard,rick.deckard@example.com,d001
Tyrell Corporation,tyr007,Rachael,achael@example.com,d002
";

    fn parse(input: &[u8]) -> Vec<Result<CsvRow, RowFailure>> {
        CsvRows::new(input).unwrap().collect()
    }

    fn rows(input: &[u8]) -> Vec<CsvRow> {
        parse(input)
            .into_iter()
            .map(|row| row.unwrap_or_else(|failure| panic!("{failure:?}")))
            .collect()
    }

    fn header_error(input: &[u8]) -> String {
        match CsvRows::new(input) {
            Ok(_) => panic!("header {:?} was accepted", String::from_utf8_lossy(input)),
            Err(HeaderError(message)) => message,
        }
    }

    fn lines(rows: &[CsvRow]) -> Vec<u64> {
        rows.iter().map(|row| row.line).collect()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    fn chunked(chunks: Vec<Vec<u8>>) -> ChunkReader {
        let (tx, rx) = mpsc::channel();
        for chunk in chunks {
            tx.send(chunk).unwrap();
        }
        ChunkReader::new(rx)
    }

    #[test]
    fn fogbender_sample() {
        let rows = rows(FOGBENDER_SAMPLE.as_bytes());
        assert_eq!(lines(&rows), (2..=11).collect::<Vec<_>>());
        assert_eq!(
            rows[0].record,
            ImportRecord {
                external_id: some("k001"),
                email: some("captain.kirk@example.com"),
                name: some("Captain Kirk"),
                customer_id: some("uss001"),
                customer_name: some("USS Enterprise"),
                ..ImportRecord::default()
            }
        );
        assert_eq!(
            rows[9].record,
            ImportRecord {
                external_id: some("d002"),
                email: some("achael@example.com"),
                name: some("Rachael"),
                customer_id: some("tyr007"),
                customer_name: some("Tyrell Corporation"),
                ..ImportRecord::default()
            }
        );
    }

    #[test]
    fn sample_file_matches_the_sample() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fogbender-users.csv"
        );
        assert_eq!(std::fs::read_to_string(path).unwrap(), FOGBENDER_SAMPLE);
    }

    #[test]
    fn without_trailing_newline() {
        let input = FOGBENDER_SAMPLE.trim_end();
        let rows = rows(input.as_bytes());
        assert_eq!(lines(&rows), (2..=11).collect::<Vec<_>>());
        assert_eq!(rows[9].record.external_id, some("d002"));
    }

    #[test]
    fn bom_crlf_and_quoted_commas() {
        let input = "\u{FEFF}email,name,notes\r\n\
                     kirk@example.com,\"Kirk, James T.\",\"says \"\"engage\"\"\"\r\n\
                     spock@example.com,Spock,\r\n";
        let rows = rows(input.as_bytes());
        assert_eq!(lines(&rows), vec![2, 3]);
        assert_eq!(rows[0].record.email, some("kirk@example.com"));
        assert_eq!(rows[0].record.name, some("Kirk, James T."));
        assert_eq!(rows[0].record.notes, some("says \"engage\""));
        assert_eq!(rows[1].record.notes, None);
    }

    #[test]
    fn bom_before_a_quoted_header() {
        let rows = rows("\u{FEFF}\"email\",\"name\"\nkirk@example.com,Kirk\n".as_bytes());
        assert_eq!(rows[0].record.email, some("kirk@example.com"));
    }

    #[test]
    fn newlines_inside_quotes_keep_line_numbers_right() {
        let input = "email,notes\n\
                     a@example.com,\"line one\nline two\nline three\"\n\
                     b@example.com,plain\r\n\
                     c@example.com,\"crlf\r\ninside\"\r\n\
                     d@example.com,last\n";
        let rows = rows(input.as_bytes());
        assert_eq!(lines(&rows), vec![2, 5, 6, 8]);
        assert_eq!(rows[0].record.notes, some("line one\nline two\nline three"));
        assert_eq!(rows[2].record.notes, some("crlf\r\ninside"));
    }

    #[test]
    fn blank_lines_are_skipped_and_counted() {
        let input = "\n\nemail,name\n\n\nkirk@example.com,Kirk\r\n\r\n\r\n\
                     spock@example.com,Spock\n   \n,\n  ,  \nfry@example.com,Fry\n\n";
        let rows = rows(input.as_bytes());
        assert_eq!(lines(&rows), vec![6, 9, 13]);
        assert_eq!(rows[2].record.name, some("Fry"));
    }

    #[test]
    fn values_are_trimmed_and_empty_cells_are_none() {
        let rows = rows(b"email,name,city\n  kirk@example.com  , \t ,\" Riverside \"\n");
        assert_eq!(
            rows[0].record,
            ImportRecord {
                email: some("kirk@example.com"),
                city: some("Riverside"),
                ..ImportRecord::default()
            }
        );
    }

    #[test]
    fn every_column_and_alias() {
        let header = "External-ID, Email ,Name,User Avatar URL,Customer ID,CUSTOMER_NAME,\
                      title,FirstName,LastName,phone,mobile,fax,street,Postal Code,city,\
                      country,Comment";
        let values: Vec<String> = (1..=17).map(|n| format!("v{n}")).collect();
        let input = format!("{header}\n{}\n", values.join(","));
        let all = rows(input.as_bytes());
        let v = |n: usize| some(&format!("v{n}"));
        assert_eq!(
            all[0].record,
            ImportRecord {
                external_id: v(1),
                email: v(2),
                name: v(3),
                avatar_url: v(4),
                customer_id: v(5),
                customer_name: v(6),
                title: v(7),
                first_name: v(8),
                last_name: v(9),
                phone: v(10),
                mobile: v(11),
                fax: v(12),
                street: v(13),
                zip: v(14),
                city: v(15),
                country: v(16),
                notes: v(17),
            }
        );
        let aliases = "user_id,user_email,user_name,avatar_url,first_name,last_name,zip,notes";
        let aliased = rows(format!("{aliases}\n1,2,3,4,5,6,7,8\n").as_bytes());
        assert_eq!(aliased[0].record.external_id, some("1"));
        assert_eq!(aliased[0].record.first_name, some("5"));
        assert_eq!(aliased[0].record.notes, some("8"));
    }

    #[test]
    fn wrong_field_count_fails_only_that_row() {
        let input = "email,name,city\n\
                     a@example.com,A,X\n\
                     b@example.com,B\n\
                     c@example.com,C,X,extra\n\
                     solo\n\
                     d@example.com,D,X\n";
        let results = parse(input.as_bytes());
        assert_eq!(results.len(), 5);
        assert_eq!(results[0].as_ref().unwrap().line, 2);
        assert_eq!(
            results[1],
            Err(RowFailure {
                line: 3,
                reason: "row has 2 fields, header has 3".to_owned()
            })
        );
        assert_eq!(
            results[2],
            Err(RowFailure {
                line: 4,
                reason: "row has 4 fields, header has 3".to_owned()
            })
        );
        assert_eq!(
            results[3],
            Err(RowFailure {
                line: 5,
                reason: "row has 1 field, header has 3".to_owned()
            })
        );
        assert_eq!(results[4].as_ref().unwrap().line, 6);
    }

    #[test]
    fn invalid_utf8_fails_only_that_row() {
        let mut input = b"email,name\na@example.com,A\nb@example.com,B\xFF\xFEb\n".to_vec();
        input.extend_from_slice("c@example.com,Zoë\n".as_bytes());
        let results = parse(&input);
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[1],
            Err(RowFailure {
                line: 3,
                reason: "invalid UTF-8 in column 2 (name); save the file as UTF-8".to_owned()
            })
        );
        let last = results[2].as_ref().unwrap();
        assert_eq!((last.line, last.record.name.as_deref()), (4, Some("Zoë")));
    }

    #[test]
    fn empty_files() {
        for input in [&b""[..], b"\n\n", b"\xEF\xBB\xBF", b"\r\n"] {
            assert_eq!(
                header_error(input),
                "the file is empty; expected a header line such as \
                 customer_name,customer_id,user_name,user_email,user_id"
            );
        }
    }

    #[test]
    fn header_only_has_no_rows() {
        assert!(parse(b"email\n").is_empty());
        assert!(parse(b"email").is_empty());
    }

    #[test]
    fn unknown_column() {
        let message = header_error(b"email,name,shoe_size\n");
        assert_eq!(
            message,
            format!(
                "unknown column 'shoe_size' (column 3); known columns are: {}",
                known_columns()
            )
        );
        assert!(message.contains(
            "external_id or user_id, email or user_email, name or user_name, avatar_url or \
             user_avatar_url, customer_id, customer_name, title, first_name or firstname"
        ));
        assert!(message.ends_with("country, notes or comment"));
        // "customer" alone is not a column: it would be unclear whether it is an id or a name.
        assert!(header_error(b"email,customer\n").starts_with("unknown column 'customer'"));
    }

    #[test]
    fn unnamed_column() {
        assert!(
            header_error(b"email,name,\n")
                .starts_with("column 3 of the header has no name; known columns are: ")
        );
    }

    #[test]
    fn duplicate_columns() {
        assert_eq!(
            header_error(b"email,name,Email\n"),
            "columns 1 ('email') and 3 ('Email') both set email; keep one of them"
        );
        assert_eq!(
            header_error(b"user_email,name,email\n"),
            "columns 1 ('user_email') and 3 ('email') both set email; keep one of them"
        );
        assert_eq!(
            header_error(b"user_id,external-id\n"),
            "columns 1 ('user_id') and 2 ('external-id') both set external_id; keep one of them"
        );
    }

    #[test]
    fn needs_an_identifying_column() {
        let expected = "the header needs a column that identifies users: external_id (or \
                        user_id) or email (or user_email)";
        assert_eq!(header_error(b"name,customer_id\n"), expected);
        assert_eq!(header_error(b"customer_name\nx\n"), expected);
        assert!(CsvRows::new(&b"user_id\n"[..]).is_ok());
        assert!(CsvRows::new(&b"user_email\n"[..]).is_ok());
    }

    #[test]
    fn invalid_utf8_header() {
        assert_eq!(
            header_error(b"email,n\xFFme\n"),
            "the header has invalid UTF-8 in column 2; save the file as UTF-8"
        );
    }

    #[test]
    fn one_byte_chunks_read_the_same() {
        let input = format!("\u{FEFF}{}", FOGBENDER_SAMPLE.replace('\n', "\r\n"));
        let expected = parse(input.as_bytes());
        let reader = chunked(input.bytes().map(|byte| vec![byte]).collect());
        let results: Vec<_> = CsvRows::new(reader).unwrap().collect();
        assert_eq!(results, expected);
        assert_eq!(results.len(), 10);
        assert_eq!(results[9].as_ref().unwrap().line, 11);
    }

    #[test]
    fn chunk_reader_skips_empty_chunks_and_ends_when_the_sender_goes() {
        let mut reader = chunked(vec![b"ab".to_vec(), Vec::new(), Vec::new(), b"c".to_vec()]);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "abc");
        assert_eq!(reader.read(&mut [0; 4]).unwrap(), 0);
    }

    #[test]
    fn chunk_reader_fills_small_buffers_from_big_chunks() {
        let mut reader = chunked(vec![b"abcdef".to_vec()]);
        let mut buf = [0; 4];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        assert_eq!(reader.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(reader.read(&mut []).unwrap(), 0);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn large_upload_through_a_thread() {
        const ROWS: u64 = 200_000;
        // Bounded, as the service uses it, so the producer waits for the parser.
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let producer = thread::spawn(move || {
            let mut chunk = b"user_id,user_email,user_name,customer_id\n".to_vec();
            for n in 0..ROWS {
                chunk.extend_from_slice(
                    format!("u{n},user{n}@example.com,\"User, No. {n}\",c{}\n", n % 97).as_bytes(),
                );
                if chunk.len() >= 16 * 1024 {
                    tx.send(std::mem::take(&mut chunk)).unwrap();
                }
            }
            tx.send(chunk).unwrap();
        });
        let mut count = 0;
        let mut last = None;
        for row in CsvRows::new(ChunkReader::new(rx)).unwrap() {
            let row = row.unwrap();
            count += 1;
            last = Some(row);
        }
        producer.join().unwrap();
        assert_eq!(count, ROWS);
        let last = last.unwrap();
        assert_eq!(last.line, ROWS + 1);
        assert_eq!(last.record.name, some(&format!("User, No. {}", ROWS - 1)));
    }

    #[test]
    fn unclosed_quote_stops_at_the_row_limit() {
        let mut input = b"email,notes\na@example.com,ok\nb@example.com,\"never closed\n".to_vec();
        let filler = b"more text that the open quote swallows\n";
        while (input.len() as u64) < 3 * MAX_ROW_BYTES {
            input.extend_from_slice(filler);
        }
        let results = parse(&input);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].as_ref().unwrap().line, 2);
        let failure = results[1].as_ref().unwrap_err();
        assert_eq!(failure.line, 3);
        assert_eq!(
            failure.reason,
            format!(
                "the row is longer than {MAX_ROW_BYTES} bytes; a quote is probably left open, \
                 so the rest of the file was not read"
            )
        );
    }

    #[test]
    fn rows_just_under_the_limit_are_fine() {
        let long = "x".repeat(usize::try_from(MAX_ROW_BYTES).unwrap() - 64);
        let input = format!("email,notes\na@example.com,{long}\nb@example.com,{long}\n");
        let rows = rows(input.as_bytes());
        assert_eq!(lines(&rows), vec![2, 3]);
        assert_eq!(rows[1].record.notes.as_deref(), Some(long.as_str()));
    }

    /// Serves `data`, then fails like a dropped connection would.
    struct FailingReader {
        data: &'static [u8],
    }

    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "peer went away",
                ));
            }
            let n = self.data.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_error_ends_the_rows_after_one_failure() {
        let rows = CsvRows::new(FailingReader {
            data: b"email\na@example.com\nb@exam",
        })
        .unwrap();
        let results: Vec<_> = rows.collect();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].as_ref().unwrap().line, 2);
        assert_eq!(
            results[1],
            Err(RowFailure {
                line: 3,
                reason: "could not read the file: peer went away".to_owned()
            })
        );
    }

    #[test]
    fn read_error_in_the_header() {
        assert_eq!(
            header_error_from(FailingReader { data: b"email,na" }),
            "could not read the header line: peer went away"
        );
    }

    fn header_error_from(reader: impl Read) -> String {
        match CsvRows::new(reader) {
            Ok(_) => panic!("header accepted"),
            Err(HeaderError(message)) => message,
        }
    }
}
