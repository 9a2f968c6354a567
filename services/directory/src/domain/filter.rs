//! The `filter` strings of `ListUsers` and `ListCustomers`: a small AIP-160 subset.
//!
//! Terms are separated by whitespace and all must hold (an explicit `AND` is allowed and
//! ignored). A term is free text (`kirk`, `"jean luc"`), `field:text` for a partial match,
//! `status:active`, or a time comparison (`created_at>=2026-01-01`). `OR`, `NOT`, `-` and
//! parentheses are rejected rather than guessed at, so a filter never silently means
//! something other than what the caller wrote.
//!
//! Error positions are 1-based and count characters, not bytes, because they are shown to
//! people who count what they see.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

const MAX_FILTER_CHARS: usize = 2048;
const MAX_TERMS: usize = 16;
const MAX_VALUE_CHARS: usize = 256;

const USER_FIELDS: &str =
    "email, name, external_id, customer, status, created_at, last_activity_at";
const USER_STATUSES: [&str; 7] = [
    "active",
    "unconfirmed",
    "deactivated",
    "guest",
    "deleted",
    "merged",
    "erased",
];
const CUSTOMER_STATUSES: [&str; 3] = ["active", "inactive", "inactive_temporarily"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// E-mail, name or external id.
    Any,
    Email,
    Name,
    ExternalId,
    Customer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    CreatedAt,
    LastActivityAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// Case-insensitive substring match; `value` is already lower-cased.
    Contains { field: TextField, value: String },
    /// `customer:none`: users that belong to no organization.
    NoCustomer,
    /// One of the seven status names, lower-case.
    Status(String),
    Time {
        field: TimeField,
        comparison: Comparison,
        at_us: i64,
    },
}

/// All terms must match (AND). An empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserFilter {
    pub terms: Vec<Term>,
}

impl UserFilter {
    /// Lets the caller apply its default status scope only when the filter does not choose
    /// statuses itself.
    pub fn mentions_status(&self) -> bool {
        self.terms
            .iter()
            .any(|term| matches!(term, Term::Status(_)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerFilter {
    /// Lower-cased words and phrases, each a partial match on the customer's id or name.
    pub text: Vec<String>,
    /// `active`, `inactive` or `inactive_temporarily`.
    pub status: Option<String>,
}

/// `message` is complete and names the position, so it can go to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// 1-based character position where the problem starts.
    pub position: usize,
    pub message: String,
}

impl FilterError {
    fn new(position: usize, message: String) -> Self {
        Self { position, message }
    }
}

/// Parses a `ListUsers` filter; an empty or all-whitespace string is the empty filter.
pub fn parse_user_filter(input: &str) -> Result<UserFilter, FilterError> {
    let terms = tokenize(input)?
        .into_iter()
        .map(user_term)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserFilter { terms })
}

/// Parses a `ListCustomers` filter: free text plus at most one `status:` term.
pub fn parse_customer_filter(input: &str) -> Result<CustomerFilter, FilterError> {
    let mut filter = CustomerFilter::default();
    for raw in tokenize(input)? {
        match raw {
            RawTerm::Text { position, value } => {
                filter
                    .text
                    .push(checked_text(&value, position, text_label(&value))?);
            }
            RawTerm::Field {
                position,
                name,
                operator,
                operator_position,
                value,
            } => {
                if !name.eq_ignore_ascii_case("status") {
                    return Err(FilterError::new(
                        position,
                        format!(
                            "unknown field '{name}' at position {position}; expected status \
                             (other words match the customer id or name)"
                        ),
                    ));
                }
                check_status_operator(operator, operator_position)?;
                let status = status_value(&value, position, &CUSTOMER_STATUSES)?;
                if filter.status.is_some() {
                    return Err(FilterError::new(
                        position,
                        format!(
                            "status given twice (again at position {position}); a customer has \
                             only one status"
                        ),
                    ));
                }
                filter.status = Some(status);
            }
        }
    }
    Ok(filter)
}

fn user_term(raw: RawTerm) -> Result<Term, FilterError> {
    let (position, name, operator, operator_position, value) = match raw {
        RawTerm::Text { position, value } => {
            let value = checked_text(&value, position, text_label(&value))?;
            return Ok(Term::Contains {
                field: TextField::Any,
                value,
            });
        }
        RawTerm::Field {
            position,
            name,
            operator,
            operator_position,
            value,
        } => (position, name, operator, operator_position, value),
    };
    let lower = name.to_ascii_lowercase();
    let text_field = match lower.as_str() {
        "email" => Some(TextField::Email),
        "name" => Some(TextField::Name),
        "external_id" => Some(TextField::ExternalId),
        "customer" => Some(TextField::Customer),
        _ => None,
    };
    if let Some(field) = text_field {
        if operator != Operator::Has {
            return Err(FilterError::new(
                operator_position,
                format!(
                    "'{}' cannot be used with {lower} at position {operator_position}; \
                     use {lower}:text for a partial match",
                    operator.symbol()
                ),
            ));
        }
        // Quoting is the escape hatch for customers whose name contains "none".
        if field == TextField::Customer && !value.quoted && value.text.eq_ignore_ascii_case("none")
        {
            return Ok(Term::NoCustomer);
        }
        let value = checked_text(&value, position, &format!("value for '{lower}'"))?;
        return Ok(Term::Contains { field, value });
    }
    let time_field = match lower.as_str() {
        "created_at" => TimeField::CreatedAt,
        "last_activity_at" => TimeField::LastActivityAt,
        "status" => {
            check_status_operator(operator, operator_position)?;
            return status_value(&value, position, &USER_STATUSES).map(Term::Status);
        }
        _ => {
            return Err(FilterError::new(
                position,
                format!(
                    "unknown field '{name}' at position {position}; expected one of {USER_FIELDS}"
                ),
            ));
        }
    };
    let comparison = match operator {
        Operator::Lt => Comparison::Lt,
        Operator::Le => Comparison::Le,
        Operator::Gt => Comparison::Gt,
        Operator::Ge => Comparison::Ge,
        Operator::Eq => Comparison::Eq,
        Operator::Has => {
            return Err(FilterError::new(
                operator_position,
                format!(
                    "':' cannot be used with {lower} at position {operator_position}; compare \
                     times with <, <=, >, >= or =, e.g. {lower}>=2026-01-31"
                ),
            ));
        }
    };
    if value.text.trim().is_empty() {
        return Err(empty_value(&lower, position));
    }
    let at_us = parse_time(&value.text).ok_or_else(|| {
        FilterError::new(
            position,
            format!(
                "invalid time '{}' for {lower} at position {position}: expected RFC 3339 \
                 (2026-01-31T12:00:00Z) or a date (2026-01-31)",
                value.text
            ),
        )
    })?;
    Ok(Term::Time {
        field: time_field,
        comparison,
        at_us,
    })
}

fn check_status_operator(operator: Operator, operator_position: usize) -> Result<(), FilterError> {
    // `=` is accepted too because AIP-160 spells equality that way and the meaning is the same.
    match operator {
        Operator::Has | Operator::Eq => Ok(()),
        _ => Err(FilterError::new(
            operator_position,
            format!(
                "'{}' cannot be used with status at position {operator_position}; \
                 use status:active",
                operator.symbol()
            ),
        )),
    }
}

fn status_value(value: &Value, position: usize, allowed: &[&str]) -> Result<String, FilterError> {
    if value.text.trim().is_empty() {
        return Err(empty_value("status", position));
    }
    let lower = value.text.to_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(FilterError::new(
            position,
            format!(
                "unknown status '{}' at position {position}; expected one of {}",
                value.text,
                allowed.join(", ")
            ),
        ))
    }
}

fn text_label(value: &Value) -> &'static str {
    if value.quoted {
        "quoted phrase"
    } else {
        "text"
    }
}

fn checked_text(value: &Value, position: usize, label: &str) -> Result<String, FilterError> {
    if value.text.trim().is_empty() {
        return Err(FilterError::new(
            position,
            format!("empty {label} at position {position}"),
        ));
    }
    let length = value.text.chars().count();
    if length > MAX_VALUE_CHARS {
        return Err(FilterError::new(
            position,
            format!(
                "{label} at position {position} is {length} characters long; at most \
                 {MAX_VALUE_CHARS} are allowed"
            ),
        ));
    }
    Ok(value.text.to_lowercase())
}

fn empty_value(field: &str, position: usize) -> FilterError {
    FilterError::new(
        position,
        format!("empty value for '{field}' at position {position}"),
    )
}

fn parse_time(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        Date::parse(text, format_description!("[year]-[month]-[day]"))
            .ok()
            .map(|date| date.midnight().assume_utc())
    })?;
    // Floor, so that a sub-microsecond instant before 1970 does not round towards the epoch.
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000)).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Has,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Operator {
    fn symbol(self) -> &'static str {
        match self {
            Operator::Has => ":",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Eq => "=",
        }
    }
}

#[derive(Debug)]
struct Value {
    /// Unescaped, case preserved: lower-casing is each field's decision.
    text: String,
    /// A quoted `none` is text, not the keyword.
    quoted: bool,
}

/// One term as written, before its field is understood; both filter languages share this.
#[derive(Debug)]
enum RawTerm {
    Text {
        position: usize,
        value: Value,
    },
    Field {
        position: usize,
        name: String,
        operator: Operator,
        operator_position: usize,
        value: Value,
    },
}

fn tokenize(input: &str) -> Result<Vec<RawTerm>, FilterError> {
    let length = input.chars().count();
    if length > MAX_FILTER_CHARS {
        return Err(FilterError::new(
            MAX_FILTER_CHARS + 1,
            format!("filter is {length} characters long; at most {MAX_FILTER_CHARS} are allowed"),
        ));
    }
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        index: 0,
    };
    let mut terms = Vec::new();
    // An `AND` waiting for the term after it.
    let mut pending_and: Option<usize> = None;
    loop {
        lexer.skip_whitespace();
        let Some(first) = lexer.peek() else { break };
        let position = lexer.position();
        let term = match first {
            '"' => {
                let text = lexer.quoted()?;
                lexer.expect_separator()?;
                RawTerm::Text {
                    position,
                    value: Value { text, quoted: true },
                }
            }
            '(' | ')' => return Err(parentheses(position)),
            '-' => {
                return Err(FilterError::new(
                    position,
                    format!(
                        "negation ('-') at position {position} is not supported; quote the \
                         text to search for a leading '-'"
                    ),
                ));
            }
            _ if lexer.at_operator() => {
                return Err(FilterError::new(
                    position,
                    format!("missing field name before '{first}' at position {position}"),
                ));
            }
            _ => {
                let word = lexer.word();
                let word_end = lexer.index;
                // AIP-160 allows spaces around operators (`created_at >= 2026-01-01`).
                lexer.skip_whitespace();
                if lexer.at_operator() {
                    let operator_position = lexer.position();
                    let operator = lexer.operator()?;
                    lexer.skip_whitespace();
                    let value = lexer.value()?;
                    RawTerm::Field {
                        position,
                        name: word,
                        operator,
                        operator_position,
                        value,
                    }
                } else {
                    lexer.index = word_end;
                    match lexer.peek() {
                        Some('"') => return Err(stray_quote(lexer.position())),
                        Some('(' | ')') => return Err(parentheses(lexer.position())),
                        _ => {}
                    }
                    if word.eq_ignore_ascii_case("AND") {
                        if terms.is_empty() || pending_and.is_some() {
                            return Err(dangling_and(position));
                        }
                        pending_and = Some(position);
                        continue;
                    }
                    if word.eq_ignore_ascii_case("OR") || word.eq_ignore_ascii_case("NOT") {
                        return Err(FilterError::new(
                            position,
                            format!(
                                "{} at position {position} is not supported: all terms must \
                                 match; quote \"{word}\" to search for the word",
                                word.to_ascii_uppercase()
                            ),
                        ));
                    }
                    RawTerm::Text {
                        position,
                        value: Value {
                            text: word,
                            quoted: false,
                        },
                    }
                }
            }
        };
        if terms.len() == MAX_TERMS {
            return Err(FilterError::new(
                position,
                format!(
                    "too many terms: at most {MAX_TERMS} are allowed, and term {} starts at \
                     position {position}",
                    MAX_TERMS + 1
                ),
            ));
        }
        terms.push(term);
        pending_and = None;
    }
    if let Some(position) = pending_and {
        return Err(dangling_and(position));
    }
    Ok(terms)
}

fn parentheses(position: usize) -> FilterError {
    FilterError::new(
        position,
        format!(
            "parentheses (position {position}) are not supported: all terms must match; \
             quote a value that contains '(' or ')'"
        ),
    )
}

fn stray_quote(position: usize) -> FilterError {
    FilterError::new(
        position,
        format!(
            "unexpected '\"' at position {position}; quote the whole value, e.g. \
             name:\"jean luc\""
        ),
    )
}

fn dangling_and(position: usize) -> FilterError {
    FilterError::new(
        position,
        format!("AND at position {position} must stand between two terms"),
    )
}

struct Lexer {
    chars: Vec<char>,
    index: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.index).copied()
    }

    fn peek_next(&self) -> Option<char> {
        self.chars.get(self.index + 1).copied()
    }

    fn position(&self) -> usize {
        self.index + 1
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.index += 1;
        }
    }

    fn at_operator(&self) -> bool {
        match self.peek() {
            Some(':' | '<' | '>' | '=') => true,
            // Only so that `!=` gets its own error instead of becoming part of a field name.
            Some('!') => self.peek_next() == Some('='),
            _ => false,
        }
    }

    /// A field name or free-text word: stops where an operator, quote or parenthesis begins.
    fn word(&mut self) -> String {
        let start = self.index;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, '"' | '(' | ')') || self.at_operator() {
                break;
            }
            self.index += 1;
        }
        self.chars[start..self.index].iter().collect()
    }

    fn operator(&mut self) -> Result<Operator, FilterError> {
        let position = self.position();
        let first = self.peek();
        self.index += 1;
        let followed_by_equals = self.peek() == Some('=');
        let operator = match first {
            Some(':') => Operator::Has,
            Some('=') => Operator::Eq,
            Some('<') if followed_by_equals => Operator::Le,
            Some('<') => Operator::Lt,
            Some('>') if followed_by_equals => Operator::Ge,
            Some('>') => Operator::Gt,
            _ => {
                return Err(FilterError::new(
                    position,
                    format!(
                        "'!=' at position {position} is not supported; use ':' for text and \
                         <, <=, >, >= or = for times"
                    ),
                ));
            }
        };
        if matches!(operator, Operator::Le | Operator::Ge) {
            self.index += 1;
        }
        Ok(operator)
    }

    /// The value after an operator. A bare value runs to the next whitespace and may contain
    /// `:`, which RFC 3339 times need.
    fn value(&mut self) -> Result<Value, FilterError> {
        if self.peek() == Some('"') {
            let text = self.quoted()?;
            self.expect_separator()?;
            return Ok(Value { text, quoted: true });
        }
        let start = self.index;
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() => break,
                '"' => return Err(stray_quote(self.position())),
                '(' | ')' => return Err(parentheses(self.position())),
                _ => self.index += 1,
            }
        }
        Ok(Value {
            text: self.chars[start..self.index].iter().collect(),
            quoted: false,
        })
    }

    /// Reads a quoted string starting at the opening quote and returns it unescaped.
    fn quoted(&mut self) -> Result<String, FilterError> {
        let opening = self.position();
        let unterminated = || {
            FilterError::new(
                opening,
                format!("unterminated quote starting at position {opening}"),
            )
        };
        self.index += 1;
        let mut text = String::new();
        loop {
            let c = self.peek().ok_or_else(unterminated)?;
            self.index += 1;
            match c {
                '"' => return Ok(text),
                '\\' => {
                    let escaped = self.peek().ok_or_else(unterminated)?;
                    if escaped != '"' && escaped != '\\' {
                        let position = self.index;
                        return Err(FilterError::new(
                            position,
                            format!(
                                "invalid escape '\\{escaped}' at position {position}; inside \
                                 quotes only \\\" and \\\\ are allowed"
                            ),
                        ));
                    }
                    text.push(escaped);
                    self.index += 1;
                }
                c => text.push(c),
            }
        }
    }

    fn expect_separator(&self) -> Result<(), FilterError> {
        match self.peek() {
            Some(c) if !c.is_whitespace() => {
                let position = self.position();
                Err(FilterError::new(
                    position,
                    format!(
                        "unexpected '{c}' at position {position} after a closing quote; \
                         separate terms with a space"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn user(input: &str) -> Vec<Term> {
        match parse_user_filter(input) {
            Ok(filter) => filter.terms,
            Err(error) => panic!("{input:?} failed: {error}"),
        }
    }

    fn user_error(input: &str) -> FilterError {
        match parse_user_filter(input) {
            Ok(filter) => panic!("{input:?} parsed as {filter:?}"),
            Err(error) => error,
        }
    }

    fn customer_error(input: &str) -> FilterError {
        match parse_customer_filter(input) {
            Ok(filter) => panic!("{input:?} parsed as {filter:?}"),
            Err(error) => error,
        }
    }

    fn contains(field: TextField, value: &str) -> Term {
        Term::Contains {
            field,
            value: value.to_owned(),
        }
    }

    fn time(field: TimeField, comparison: Comparison, at_us: i64) -> Term {
        Term::Time {
            field,
            comparison,
            at_us,
        }
    }

    /// 2026-01-01T00:00:00Z
    const NEW_YEAR_2026_US: i64 = 1_767_225_600_000_000;

    #[test]
    fn empty_and_whitespace_filters_match_everything() {
        for input in ["", " ", "\t\n  ", "\u{3000}"] {
            assert_eq!(parse_user_filter(input).unwrap(), UserFilter::default());
            assert_eq!(
                parse_customer_filter(input).unwrap(),
                CustomerFilter::default()
            );
        }
    }

    #[test]
    fn bare_words_and_phrases_search_every_text_field() {
        assert_eq!(user("kirk"), vec![contains(TextField::Any, "kirk")]);
        assert_eq!(
            user("Kirk  \"Jean Luc\""),
            vec![
                contains(TextField::Any, "kirk"),
                contains(TextField::Any, "jean luc")
            ]
        );
        assert_eq!(
            user("captain.kirk@example.com"),
            vec![contains(TextField::Any, "captain.kirk@example.com")]
        );
        assert_eq!(user("jean-luc"), vec![contains(TextField::Any, "jean-luc")]);
    }

    #[test]
    fn and_between_terms_is_ignored_in_any_case() {
        let expected = vec![
            contains(TextField::Any, "kirk"),
            contains(TextField::Any, "spock"),
            contains(TextField::Any, "mccoy"),
        ];
        assert_eq!(user("kirk AND spock and mccoy"), expected);
        assert_eq!(user("kirk And spock aNd mccoy"), expected);
        // A quoted AND is a phrase, not the keyword.
        assert_eq!(
            user("kirk \"and\""),
            vec![
                contains(TextField::Any, "kirk"),
                contains(TextField::Any, "and")
            ]
        );
    }

    #[test]
    fn and_must_stand_between_terms() {
        for (input, position) in [
            ("AND kirk", 1),
            ("kirk AND", 6),
            ("kirk AND AND spock", 10),
            ("and", 1),
        ] {
            let error = user_error(input);
            assert_eq!(error.position, position, "{input}");
            assert_eq!(
                error.message,
                format!("AND at position {position} must stand between two terms")
            );
        }
    }

    #[test]
    fn text_fields() {
        assert_eq!(
            user("email:Kirk@Example.com name:\"Jean Luc\" external_id:K001 customer:USS"),
            vec![
                contains(TextField::Email, "kirk@example.com"),
                contains(TextField::Name, "jean luc"),
                contains(TextField::ExternalId, "k001"),
                contains(TextField::Customer, "uss"),
            ]
        );
    }

    #[test]
    fn field_names_are_case_insensitive() {
        assert_eq!(
            user("EMAIL:kirk Created_At>2026-01-01 Status:ACTIVE"),
            vec![
                contains(TextField::Email, "kirk"),
                time(TimeField::CreatedAt, Comparison::Gt, NEW_YEAR_2026_US),
                Term::Status("active".to_owned()),
            ]
        );
    }

    #[test]
    fn spaces_around_operators_are_allowed() {
        assert_eq!(
            user("created_at >= 2026-01-01 name : kirk"),
            vec![
                time(TimeField::CreatedAt, Comparison::Ge, NEW_YEAR_2026_US),
                contains(TextField::Name, "kirk"),
            ]
        );
    }

    #[test]
    fn quoted_values_unescape_quotes_and_backslashes() {
        assert_eq!(
            user(r#"name:"say \"hi\"" name:"a\\b" "\"""#),
            vec![
                contains(TextField::Name, "say \"hi\""),
                contains(TextField::Name, "a\\b"),
                contains(TextField::Any, "\""),
            ]
        );
    }

    #[test]
    fn bare_values_may_contain_colons() {
        assert_eq!(
            user("external_id:urn:x:1"),
            vec![contains(TextField::ExternalId, "urn:x:1")]
        );
    }

    #[test]
    fn customer_none_only_when_unquoted() {
        assert_eq!(user("customer:none"), vec![Term::NoCustomer]);
        assert_eq!(user("customer:NONE"), vec![Term::NoCustomer]);
        assert_eq!(
            user("customer:\"none\""),
            vec![contains(TextField::Customer, "none")]
        );
        assert_eq!(
            user("customer:nonesuch"),
            vec![contains(TextField::Customer, "nonesuch")]
        );
        // Other fields have no keyword.
        assert_eq!(user("name:none"), vec![contains(TextField::Name, "none")]);
    }

    #[test]
    fn every_user_status() {
        for status in USER_STATUSES {
            assert_eq!(
                user(&format!("status:{}", status.to_uppercase())),
                vec![Term::Status(status.to_owned())]
            );
        }
        assert_eq!(
            user("status=\"Deleted\""),
            vec![Term::Status("deleted".to_owned())]
        );
    }

    #[test]
    fn mentions_status() {
        assert!(
            parse_user_filter("kirk status:deleted")
                .unwrap()
                .mentions_status()
        );
        assert!(
            !parse_user_filter("kirk customer:none created_at<2026-01-01")
                .unwrap()
                .mentions_status()
        );
        assert!(!UserFilter::default().mentions_status());
    }

    #[test]
    fn time_comparisons() {
        assert_eq!(
            user(
                "created_at<2026-01-01 created_at<=2026-01-01 created_at>2026-01-01 \
                 created_at>=2026-01-01 last_activity_at=2026-01-01"
            ),
            vec![
                time(TimeField::CreatedAt, Comparison::Lt, NEW_YEAR_2026_US),
                time(TimeField::CreatedAt, Comparison::Le, NEW_YEAR_2026_US),
                time(TimeField::CreatedAt, Comparison::Gt, NEW_YEAR_2026_US),
                time(TimeField::CreatedAt, Comparison::Ge, NEW_YEAR_2026_US),
                time(TimeField::LastActivityAt, Comparison::Eq, NEW_YEAR_2026_US),
            ]
        );
    }

    #[test]
    fn rfc3339_times_keep_offsets_and_fractions() {
        let noon = NEW_YEAR_2026_US + 12 * 3_600_000_000;
        for (value, expected) in [
            ("2026-01-01T12:00:00Z", noon),
            ("2026-01-01t12:00:00z", noon),
            ("2026-01-01T13:00:00+01:00", noon),
            ("2026-01-01T12:00:00.000123Z", noon + 123),
            // Below a microsecond is dropped, not rounded.
            ("2026-01-01T12:00:00.0000019Z", noon + 1),
            ("\"2026-01-01T12:00:00Z\"", noon),
            // RFC 3339 section 5.6 lets a space stand for the T.
            ("\"2026-01-01 12:00:00Z\"", noon),
            ("1970-01-01", 0),
            // Floors before the epoch.
            ("1969-12-31T23:59:59.9999995Z", -1),
        ] {
            assert_eq!(
                user(&format!("last_activity_at<{value}")),
                vec![time(TimeField::LastActivityAt, Comparison::Lt, expected)],
                "{value}"
            );
        }
    }

    #[test]
    fn invalid_times() {
        for value in [
            "2026-13-01",
            "2026-02-30",
            "2026-1-1",
            "26-01-01",
            "2026-01-01T12:00:00",
            "yesterday",
            "1767225600",
        ] {
            let error = user_error(&format!("created_at>={value}"));
            assert_eq!(error.position, 1, "{value}");
            assert_eq!(
                error.message,
                format!(
                    "invalid time '{value}' for created_at at position 1: expected RFC 3339 \
                     (2026-01-31T12:00:00Z) or a date (2026-01-31)"
                )
            );
        }
    }

    #[test]
    fn quoted_invalid_time_is_reported_unescaped() {
        assert_eq!(
            user_error("created_at>=\"next tuesday\"").message,
            "invalid time 'next tuesday' for created_at at position 1: expected RFC \
             3339 (2026-01-31T12:00:00Z) or a date (2026-01-31)"
        );
    }

    #[test]
    fn time_with_colon_suggests_operators() {
        let error = user_error("kirk created_at:2026-01-01");
        assert_eq!(error.position, 16);
        assert_eq!(
            error.message,
            "':' cannot be used with created_at at position 16; compare times with <, <=, >, \
             >= or =, e.g. created_at>=2026-01-31"
        );
    }

    #[test]
    fn text_fields_only_take_colon() {
        let error = user_error("email=kirk");
        assert_eq!(error.position, 6);
        assert_eq!(
            error.message,
            "'=' cannot be used with email at position 6; use email:text for a partial match"
        );
        assert_eq!(user_error("name>=k").position, 5);
    }

    #[test]
    fn status_rejects_comparisons() {
        let error = user_error("status<active");
        assert_eq!(error.position, 7);
        assert_eq!(
            error.message,
            "'<' cannot be used with status at position 7; use status:active"
        );
    }

    #[test]
    fn unknown_field() {
        let error = user_error("kirk  foo:bar");
        assert_eq!(error.position, 7);
        assert_eq!(
            error.message,
            "unknown field 'foo' at position 7; expected one of email, name, external_id, \
             customer, status, created_at, last_activity_at"
        );
        assert_eq!(
            user_error("Phone:1").message,
            "unknown field 'Phone' at position 1; expected one of email, name, external_id, \
             customer, status, created_at, last_activity_at"
        );
        // A URL-like word reads as a field; quoting is the way out.
        assert_eq!(user_error("http://x").position, 1);
        assert_eq!(
            user("\"http://x\""),
            vec![contains(TextField::Any, "http://x")]
        );
    }

    #[test]
    fn unknown_field_wins_over_empty_value() {
        assert!(
            user_error("foo:")
                .message
                .starts_with("unknown field 'foo' at position 1")
        );
    }

    #[test]
    fn unknown_status() {
        let error = user_error("status:actve");
        assert_eq!(error.position, 1);
        assert_eq!(
            error.message,
            "unknown status 'actve' at position 1; expected one of active, unconfirmed, \
             deactivated, guest, deleted, merged, erased"
        );
    }

    #[test]
    fn empty_values() {
        for (input, field, position) in [
            ("email:", "email", 1),
            ("email:\"\"", "email", 1),
            ("kirk name:\"  \"", "name", 6),
            ("customer:", "customer", 1),
            ("status:", "status", 1),
            ("created_at>=", "created_at", 1),
            ("last_activity_at=\"\"", "last_activity_at", 1),
        ] {
            let error = user_error(input);
            assert_eq!(error.position, position, "{input}");
            assert_eq!(
                error.message,
                format!("empty value for '{field}' at position {position}")
            );
        }
        let error = user_error("kirk \"\"");
        assert_eq!(error.position, 6);
        assert_eq!(error.message, "empty quoted phrase at position 6");
    }

    #[test]
    fn unterminated_quotes() {
        for (input, position) in [
            ("\"kirk", 1),
            ("kirk name:\"jean luc", 11),
            ("\"ends with escape\\", 1),
            ("\"escaped quote\\\"", 1),
        ] {
            let error = user_error(input);
            assert_eq!(error.position, position, "{input}");
            assert_eq!(
                error.message,
                format!("unterminated quote starting at position {position}")
            );
        }
    }

    #[test]
    fn invalid_escape() {
        let error = user_error(r#"name:"a\nb""#);
        assert_eq!(error.position, 8);
        assert_eq!(
            error.message,
            r#"invalid escape '\n' at position 8; inside quotes only \" and \\ are allowed"#
        );
    }

    #[test]
    fn stray_quotes() {
        for (input, position) in [("kirk\"x\"", 5), ("name:jean\"luc\"", 10)] {
            let error = user_error(input);
            assert_eq!(error.position, position, "{input}");
            assert_eq!(
                error.message,
                format!(
                    "unexpected '\"' at position {position}; quote the whole value, e.g. \
                     name:\"jean luc\""
                )
            );
        }
        let error = user_error("\"kirk\"spock");
        assert_eq!(error.position, 7);
        assert_eq!(
            error.message,
            "unexpected 's' at position 7 after a closing quote; separate terms with a space"
        );
        assert_eq!(user_error("name:\"kirk\":x").position, 12);
    }

    #[test]
    fn or_not_and_negation_are_rejected() {
        let error = user_error("kirk OR spock");
        assert_eq!(error.position, 6);
        assert_eq!(
            error.message,
            "OR at position 6 is not supported: all terms must match; quote \"OR\" to search \
             for the word"
        );
        let error = user_error("not kirk");
        assert_eq!(error.position, 1);
        assert_eq!(
            error.message,
            "NOT at position 1 is not supported: all terms must match; quote \"not\" to \
             search for the word"
        );
        let error = user_error("kirk -spock");
        assert_eq!(error.position, 6);
        assert_eq!(
            error.message,
            "negation ('-') at position 6 is not supported; quote the text to search for a \
             leading '-'"
        );
        assert_eq!(user("\"-spock\""), vec![contains(TextField::Any, "-spock")]);
        assert_eq!(user("\"or\""), vec![contains(TextField::Any, "or")]);
        // Only whole words are keywords.
        assert_eq!(
            user("oregon notary android"),
            vec![
                contains(TextField::Any, "oregon"),
                contains(TextField::Any, "notary"),
                contains(TextField::Any, "android"),
            ]
        );
    }

    #[test]
    fn not_equal_is_rejected() {
        let error = user_error("status!=active");
        assert_eq!(error.position, 7);
        assert_eq!(
            error.message,
            "'!=' at position 7 is not supported; use ':' for text and <, <=, >, >= or = for \
             times"
        );
        // A lone `!` is ordinary text.
        assert_eq!(user("wow!"), vec![contains(TextField::Any, "wow!")]);
    }

    #[test]
    fn parentheses_are_rejected() {
        for (input, position) in [
            ("(kirk)", 1),
            ("kirk )", 6),
            ("kirk(", 5),
            ("name:(kirk", 6),
        ] {
            let error = user_error(input);
            assert_eq!(error.position, position, "{input}");
            assert_eq!(
                error.message,
                format!(
                    "parentheses (position {position}) are not supported: all terms must \
                     match; quote a value that contains '(' or ')'"
                )
            );
        }
        assert_eq!(
            user("name:\"o(brien)\""),
            vec![contains(TextField::Name, "o(brien)")]
        );
    }

    #[test]
    fn missing_field_name() {
        let error = user_error(":kirk");
        assert_eq!(error.position, 1);
        assert_eq!(error.message, "missing field name before ':' at position 1");
        let error = user_error("\"kirk\" >=2026-01-01");
        assert_eq!(error.position, 8);
        assert_eq!(error.message, "missing field name before '>' at position 8");
        // With a word before it, the operator makes that word a field name.
        assert!(
            user_error("kirk =x")
                .message
                .starts_with("unknown field 'kirk' at position 1")
        );
    }

    #[test]
    fn value_length_limit() {
        let longest = "a".repeat(MAX_VALUE_CHARS);
        assert_eq!(
            user(&format!("name:{longest}")),
            vec![contains(TextField::Name, &longest)]
        );
        let error = user_error(&format!("kirk name:{longest}b"));
        assert_eq!(error.position, 6);
        assert_eq!(
            error.message,
            "value for 'name' at position 6 is 257 characters long; at most 256 are allowed"
        );
        // Characters, not bytes.
        let wide = "é".repeat(MAX_VALUE_CHARS);
        assert_eq!(user(&wide), vec![contains(TextField::Any, &wide)]);
        let error = user_error(&format!("\"{wide}é\""));
        assert_eq!(
            error.message,
            "quoted phrase at position 1 is 257 characters long; at most 256 are allowed"
        );
    }

    #[test]
    fn filter_length_limit() {
        let longest = format!("{}x", " ".repeat(MAX_FILTER_CHARS - 1));
        assert_eq!(user(&longest), vec![contains(TextField::Any, "x")]);
        let error = user_error(&format!("{longest}y"));
        assert_eq!(error.position, 2049);
        assert_eq!(
            error.message,
            "filter is 2049 characters long; at most 2048 are allowed"
        );
        // Counted in characters: 2048 three-byte characters fit.
        let wide = "€".repeat(MAX_FILTER_CHARS);
        assert!(parse_user_filter(&wide).is_err_and(|e| e.message.contains("256")));
    }

    #[test]
    fn term_limit() {
        let sixteen = vec!["k"; MAX_TERMS].join(" AND ");
        assert_eq!(user(&sixteen).len(), MAX_TERMS);
        let error = user_error(&format!("{sixteen} spock"));
        assert_eq!(error.position, sixteen.chars().count() + 2);
        assert_eq!(
            error.message,
            format!(
                "too many terms: at most 16 are allowed, and term 17 starts at position {}",
                error.position
            )
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let error = user_error("Zoë Ørsted foo:bar");
        assert_eq!(error.position, 12);
        assert!(error.message.contains("at position 12"));
        let error = user_error("名前 \"東京");
        assert_eq!(error.position, 4);
        assert_eq!(error.message, "unterminated quote starting at position 4");
        let error = user_error("😀 status:x");
        assert_eq!(error.position, 3);
    }

    #[test]
    fn unicode_values_are_lower_cased() {
        assert_eq!(
            user("name:ZOË \"ØRSTED Straße\" ΣΊΣΥΦΟΣ"),
            vec![
                contains(TextField::Name, "zoë"),
                contains(TextField::Any, "ørsted straße"),
                contains(TextField::Any, "σίσυφος"),
            ]
        );
        // Unicode whitespace separates terms too.
        assert_eq!(
            user("kirk\u{3000}spock"),
            vec![
                contains(TextField::Any, "kirk"),
                contains(TextField::Any, "spock")
            ]
        );
    }

    #[test]
    fn error_display_is_the_message() {
        let error = user_error("foo:bar");
        assert_eq!(error.to_string(), error.message);
    }

    #[test]
    fn customer_filter_text_and_status() {
        assert_eq!(
            parse_customer_filter("USS \"Planet Express\" and status:Inactive_Temporarily")
                .unwrap(),
            CustomerFilter {
                text: vec!["uss".to_owned(), "planet express".to_owned()],
                status: Some("inactive_temporarily".to_owned()),
            }
        );
        for status in CUSTOMER_STATUSES {
            assert_eq!(
                parse_customer_filter(&format!("status={status}"))
                    .unwrap()
                    .status
                    .as_deref(),
                Some(status)
            );
        }
    }

    #[test]
    fn customer_filter_errors() {
        let error = customer_error("uss name:x");
        assert_eq!(error.position, 5);
        assert_eq!(
            error.message,
            "unknown field 'name' at position 5; expected status (other words match the \
             customer id or name)"
        );
        let error = customer_error("status:deleted");
        assert_eq!(
            error.message,
            "unknown status 'deleted' at position 1; expected one of active, inactive, \
             inactive_temporarily"
        );
        let error = customer_error("status:active status:inactive");
        assert_eq!(error.position, 15);
        assert_eq!(
            error.message,
            "status given twice (again at position 15); a customer has only one status"
        );
        assert_eq!(
            customer_error("status:").message,
            "empty value for 'status' at position 1"
        );
        assert_eq!(
            customer_error("status>active").message,
            "'>' cannot be used with status at position 7; use status:active"
        );
        assert_eq!(
            customer_error("uss OR px").message,
            "OR at position 5 is not supported: all terms must match; quote \"OR\" to \
             search for the word"
        );
        assert_eq!(
            customer_error("\"uss").message,
            "unterminated quote starting at position 1"
        );
        assert_eq!(
            customer_error("\"\"").message,
            "empty quoted phrase at position 1"
        );
        assert!(
            customer_error(&"a ".repeat(17))
                .message
                .starts_with("too many terms")
        );
    }
}
