//! Update masks as AIP-134 reads them, for every service's Update calls: a named path
//! updates that field (an empty value clears it); an omitted or empty mask updates every
//! field the message populates (non-default values), so a field cannot be cleared without
//! a mask; `*` replaces every updatable field, clearing those the message leaves empty. A
//! path naming an unknown or output-only field is a violation of `update_mask`.

use crate::FieldViolation;

/// The updatable fields of `resource` (the request's field name, e.g. `user`) that the
/// call changes, given the mask's `paths`. Paths may carry the `resource.` prefix.
pub fn fields_to_update(
    paths: Vec<String>,
    resource: &str,
    updatable: &[&str],
    populated: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Vec<FieldViolation>> {
    if paths.is_empty() {
        return Ok(updatable
            .iter()
            .filter(|field| populated(field))
            .map(|field| (*field).to_owned())
            .collect());
    }
    if paths.iter().any(|path| path == "*") {
        if paths.len() > 1 {
            return Err(vec![FieldViolation::new(
                "update_mask",
                "'*' replaces every updatable field and cannot be combined with other paths",
            )]);
        }
        return Ok(updatable.iter().map(|field| (*field).to_owned()).collect());
    }
    let prefix = format!("{resource}.");
    let mut fields = Vec::new();
    let mut violations = Vec::new();
    for path in &paths {
        let field = path.strip_prefix(&prefix).unwrap_or(path);
        if updatable.contains(&field) {
            if !fields.iter().any(|known| known == field) {
                fields.push(field.to_owned());
            }
        } else {
            violations.push(FieldViolation::new(
                "update_mask",
                format!(
                    "'{path}' cannot be updated; updatable fields: {} (or '*' for all)",
                    updatable.join(", ")
                ),
            ));
        }
    }
    if violations.is_empty() {
        Ok(fields)
    } else {
        Err(violations)
    }
}
