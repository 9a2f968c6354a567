//! One bad field of a request, as `google.rpc.BadRequest` reports it: every service checks
//! its inputs into these, and its API layer turns a list of them into INVALID_ARGUMENT.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `user.email` or `customer.domains[2]`.
    pub field: String,
    /// What is wrong and what would be right, for a person to act on.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}
