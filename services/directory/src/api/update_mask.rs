//! Update masks as AIP-134 reads them, through the rule every service shares
//! (`roster_core::update_mask`).

use prost_types::FieldMask;

use crate::error::{DirectoryError, Result};

/// The updatable fields of `resource` (the request's field name, e.g. `user`) that the
/// call changes. Paths may carry the `resource.` prefix.
pub fn fields_to_update(
    mask: Option<FieldMask>,
    resource: &str,
    updatable: &[&str],
    populated: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    roster_core::update_mask::fields_to_update(paths, resource, updatable, populated)
        .map_err(DirectoryError::Invalid)
}
