//! Parsing of uploaded user files.

pub mod csv_rows;
