//! The bulk calls' rules without SQL or protobuf: their limits, the agent ids they name,
//! and reading a BulkInviteAgents file into rows.
//!
//! The file is read whole (it is at most [`MAX_FILE_BYTES`]) rather than streamed row by
//! row as the directory's import is: its rows are decided in one transaction anyway, and
//! holding a megabyte is cheaper than the machinery of a pipeline. A bad header fails the
//! whole call; a bad row fails only itself, with its line, so the caller fixes every row
//! in one go.

use std::collections::HashMap;

use csv::{ByteRecord, ReaderBuilder};
use roster_core::FieldViolation;
use uuid::Uuid;

use super::values;

/// The largest BulkInviteAgents file. A thousand rows of long e-mails, names, roles and
/// teams fit in a few hundred kilobytes; the rest is room for quoting and spreadsheets'
/// habits.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Rows below the header of one BulkInviteAgents file, and agents of one BulkUpdateAgents
/// or BulkDeactivateAgents. One transaction holds the workspace's lock for the lot, so the
/// bound is what keeps every other staff change of the workspace from waiting long.
pub const MAX_ITEMS: usize = 1000;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One row of a BulkInviteAgents file, checked as InviteAgent checks its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitee {
    pub email: String,
    pub name: String,
    /// A role's name (built-in or custom); `agent` when the cell is empty.
    pub role: String,
    /// A team's name (any case) or id, as written.
    pub team: Option<String>,
}

/// A row of the file: where it is, the e-mail as written (to match results to rows), and
/// the row checked or what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    /// 1-based line where the row starts, as an editor shows it; the header is line 1.
    pub line: u64,
    pub email: String,
    pub checked: Result<Invitee, Vec<FieldViolation>>,
}

/// The file cannot be read as a whole (header, size): the call fails INVALID_ARGUMENT.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Column {
    Email,
    Role,
    Team,
    Name,
}

/// Canonical name first, then the names spreadsheets and other help desks' exports use.
const COLUMNS: [(Column, &[&str]); 4] = [
    (Column::Email, &["email", "e_mail", "email_address"]),
    (Column::Role, &["role"]),
    (Column::Team, &["team", "team_name", "team_id"]),
    (Column::Name, &["name", "full_name"]),
];

fn known_columns() -> &'static str {
    "email (required), role, team, name"
}

/// "E-mail Address" and "email_address" are one column to a person.
fn normalise_header(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

fn map_header(header: &ByteRecord) -> Result<Vec<Column>, FileError> {
    let mut columns = Vec::with_capacity(header.len());
    for (index, bytes) in header.iter().enumerate() {
        let number = index + 1;
        let written = std::str::from_utf8(bytes).map_err(|_| {
            FileError(format!(
                "the header has invalid UTF-8 in column {number}; save the file as UTF-8"
            ))
        })?;
        let normalised = normalise_header(written);
        let column = COLUMNS
            .iter()
            .find(|(_, names)| names.contains(&normalised.as_str()))
            .map(|(column, _)| *column)
            .ok_or_else(|| {
                FileError(format!(
                    "unknown column '{}' (column {number}) in the header; the columns are {}",
                    written.trim(),
                    known_columns()
                ))
            })?;
        if let Some(earlier) = columns.iter().position(|seen| *seen == column) {
            return Err(FileError(format!(
                "columns {} and {number} of the header both name the {}; keep one",
                earlier + 1,
                COLUMNS
                    .iter()
                    .find(|(c, _)| *c == column)
                    .and_then(|(_, names)| names.first())
                    .copied()
                    .unwrap_or("same column")
            )));
        }
        columns.push(column);
    }
    if !columns.contains(&Column::Email) {
        return Err(FileError(format!(
            "the header needs an email column; the columns are {}",
            known_columns()
        )));
    }
    Ok(columns)
}

/// Reads a BulkInviteAgents file: a header line naming the columns, then one invitee per
/// row. Blank lines are skipped. Errors: more than [`MAX_FILE_BYTES`] or [`MAX_ITEMS`]
/// rows, an empty file or one without rows, a header with an unknown, repeated or missing
/// column. A row that repeats an earlier row's e-mail fails, so one file never invites
/// one person twice.
pub fn read_invite_file(bytes: &[u8]) -> Result<Vec<FileRow>, FileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(file_too_large());
    }
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // Flexible, because a short or long row is that row's failure, not the file's.
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut header = ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => {
            return Err(FileError(
                "the file is empty; expected a header line such as email,role,team,name".to_owned(),
            ));
        }
        Err(error) => return Err(FileError(format!("could not read the header: {error}"))),
    }
    let columns = map_header(&header)?;

    let mut lines = LineCounter::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::new();
    let mut record = ByteRecord::new();
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                return Err(FileError(format!(
                    "could not read the file after line {}: {error}",
                    lines.line_at(bytes, start)
                )));
            }
        }
        // Spreadsheets export rows of bare separators; they are as blank as empty lines,
        // which the parser skips itself.
        if record.iter().all(|cell| cell.trim_ascii().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ITEMS {
            return Err(FileError(format!(
                "the file has more than {MAX_ITEMS} rows below its header; split it into files of at most {MAX_ITEMS} rows"
            )));
        }
        let line = lines.line_at(bytes, first_content(bytes, start));
        rows.push(read_row(&columns, &record, line, &mut seen));
    }
    if rows.is_empty() {
        return Err(FileError(
            "the file has a header but no rows; add one row per agent to invite".to_owned(),
        ));
    }
    Ok(rows)
}

/// The error of a file past [`MAX_FILE_BYTES`], also while it is being uploaded.
pub fn file_too_large() -> FileError {
    FileError(format!(
        "the file is larger than {MAX_FILE_BYTES} bytes (1 MiB); split it into files of at most {MAX_ITEMS} rows"
    ))
}

/// The first byte of a record starting at `start`: the parser dates a record from where
/// the previous one ended, before the line breaks of blank lines in between.
fn first_content(bytes: &[u8], start: u64) -> u64 {
    let start = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let skipped = bytes[start..]
        .iter()
        .take_while(|byte| matches!(byte, b'\r' | b'\n'))
        .count();
    (start + skipped) as u64
}

/// Line numbers of byte offsets, asked in increasing order: counts each line break once.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    breaks: u64,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], offset: u64) -> u64 {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        if offset > self.offset {
            self.breaks += bytes[self.offset..offset]
                .iter()
                .filter(|byte| **byte == b'\n')
                .count() as u64;
            self.offset = offset;
        }
        self.breaks + 1
    }
}

fn read_row(
    columns: &[Column],
    record: &ByteRecord,
    line: u64,
    seen: &mut HashMap<String, u64>,
) -> FileRow {
    let mut cells: HashMap<Column, String> = HashMap::new();
    let mut violations = Vec::new();
    for (bytes, column) in record.iter().zip(columns) {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                cells.insert(*column, text.trim().to_owned());
            }
            Err(_) => violations.push(FieldViolation::new(
                name_of(*column),
                "has invalid UTF-8; save the file as UTF-8",
            )),
        }
    }
    let written = cells.get(&Column::Email).cloned().unwrap_or_default();
    if record.len() != columns.len() {
        violations.push(FieldViolation::new(
            "row",
            format!(
                "has {} cells, the header names {} columns",
                record.len(),
                columns.len()
            ),
        ));
    }
    let cell = |column: Column| cells.get(&column).map_or("", String::as_str);
    let mut take = |checked: Result<String, FieldViolation>| {
        checked.unwrap_or_else(|violation| {
            violations.push(violation);
            String::new()
        })
    };
    let email = take(values::email("email", cell(Column::Email)));
    let role = take(values::role("role", cell(Column::Role), true));
    let name = take(values::name("name", cell(Column::Name)));
    let team = take(values::name("team", cell(Column::Team)));
    if !email.is_empty() {
        let key = values::email_key(&email);
        match seen.get(&key) {
            Some(first) => violations.push(FieldViolation::new(
                "email",
                format!("repeats the e-mail of line {first}; invite each person once"),
            )),
            None => {
                seen.insert(key, line);
            }
        }
    }
    let checked = if violations.is_empty() {
        Ok(Invitee {
            email,
            name,
            role,
            team: (!team.is_empty()).then_some(team),
        })
    } else {
        Err(violations)
    };
    FileRow {
        line,
        email: written,
        checked,
    }
}

fn name_of(column: Column) -> &'static str {
    match column {
        Column::Email => "email",
        Column::Role => "role",
        Column::Team => "team",
        Column::Name => "name",
    }
}

/// The agent ids of a BulkUpdateAgents or BulkDeactivateAgents: 1 to [`MAX_ITEMS`] UUIDs,
/// in the order given. Repeats are kept, so results keep the request's positions; the
/// service fails each repeat as an item.
pub fn agent_ids(field: &str, values: &[String]) -> Result<Vec<Uuid>, Vec<FieldViolation>> {
    if values.is_empty() || values.len() > MAX_ITEMS {
        return Err(vec![FieldViolation::new(
            field,
            format!("name 1 to {MAX_ITEMS} agents"),
        )]);
    }
    let mut ids = Vec::with_capacity(values.len());
    let mut violations = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match values::id(&format!("{field}[{index}]"), value) {
            Ok(id) => ids.push(id),
            Err(violation) => violations.push(violation),
        }
    }
    if violations.is_empty() {
        Ok(ids)
    } else {
        Err(violations)
    }
}

/// For each position, the earlier position holding the same id, if any.
pub fn repeats(ids: &[Uuid]) -> Vec<Option<usize>> {
    let mut first: HashMap<Uuid, usize> = HashMap::with_capacity(ids.len());
    ids.iter()
        .enumerate()
        .map(|(index, id)| match first.get(id) {
            Some(earlier) => Some(*earlier),
            None => {
                first.insert(*id, index);
                None
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn fields(row: &FileRow) -> Vec<&str> {
        match &row.checked {
            Ok(_) => Vec::new(),
            Err(violations) => violations.iter().map(|v| v.field.as_str()).collect(),
        }
    }

    #[test]
    fn rows_carry_the_lines_an_editor_shows() {
        let file = "\u{feff}E-mail,Role,Team\r\n\
                    ada@example.com,admin,Tier 1\r\n\
                    \r\n\
                    grace hopper,agent,\r\n\
                    ,,\r\n\
                    \"lin\r\nus@example.com\",viewer,\r\n\
                    bob@example.com,,\r\n";
        let rows = read_invite_file(file.as_bytes()).unwrap();
        let lines: Vec<u64> = rows.iter().map(|row| row.line).collect();
        assert_eq!(lines, [2, 4, 6, 8]);
        assert_eq!(
            rows[0].checked,
            Ok(Invitee {
                email: "ada@example.com".into(),
                name: String::new(),
                role: "admin".into(),
                team: Some("Tier 1".into()),
            })
        );
        assert_eq!(fields(&rows[1]), ["email"]);
        assert_eq!(rows[1].email, "grace hopper");
        assert_eq!(fields(&rows[2]), ["email"]);
        let bob = rows[3].checked.as_ref().unwrap();
        assert_eq!((bob.role.as_str(), bob.team.as_deref()), ("agent", None));
    }

    #[test]
    fn a_repeated_email_and_a_misshapen_row_fail_alone() {
        let file = "email,name\na@example.com,A\nb@example.com\nA@Example.com,again\n";
        let rows = read_invite_file(file.as_bytes()).unwrap();
        assert_eq!(fields(&rows[0]), Vec::<&str>::new());
        assert_eq!(fields(&rows[1]), ["row"]);
        assert_eq!(fields(&rows[2]), ["email"]);
        let Err(violations) = &rows[2].checked else {
            panic!()
        };
        assert!(violations[0].description.contains("line 2"));
    }

    #[test]
    fn the_header_and_the_size_fail_the_file() {
        for (file, says) in [
            ("", "empty"),
            ("email,role\n", "no rows"),
            ("name,role\nx,y\n", "needs an email column"),
            ("email,mail\nx,y\n", "unknown column 'mail'"),
            ("email,E-Mail\nx,y\n", "columns 1 and 2"),
        ] {
            let error = read_invite_file(file.as_bytes()).unwrap_err();
            assert!(error.0.contains(says), "{file:?}: {error}");
        }
        let mut many = String::from("email\n");
        for n in 0..=MAX_ITEMS {
            many.push_str(&format!("a{n}@example.com\n"));
        }
        let error = read_invite_file(many.as_bytes()).unwrap_err();
        assert!(error.0.contains("more than 1000 rows"), "{error}");
        let error = read_invite_file(&vec![b'a'; MAX_FILE_BYTES + 1]).unwrap_err();
        assert!(error.0.contains("larger than"), "{error}");
    }

    #[test]
    fn agent_ids_keep_their_positions_and_repeats_point_back() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let ids = agent_ids("ids", &[a.to_string(), b.to_string(), a.to_string()]).unwrap();
        assert_eq!(repeats(&ids), [None, None, Some(0)]);
        assert!(agent_ids("ids", &[]).is_err());
        let bad = agent_ids("ids", &[a.to_string(), "x".into()]).unwrap_err();
        assert_eq!(bad[0].field, "ids[1]");
    }
}
