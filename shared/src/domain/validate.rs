//! Small field checks shared by the domain constructors. Each names the field
//! it rejects so the API can say exactly what to fix.

use crate::error::FieldError;

/// A trimmed string of `min..=max` characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(if min > 0 && len == 0 {
            FieldError::new(field, "must not be empty")
        } else {
            FieldError::new(field, format!("must be {min}-{max} characters (got {len})"))
        });
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// An optional trimmed string of at most `max` characters; empty becomes `None`.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, 1, max).map(Some),
    }
}

/// A finite number within `min..=max`.
pub fn range(field: &str, value: f64, min: f64, max: f64) -> Result<f64, FieldError> {
    if !value.is_finite() || value < min || value > max {
        return Err(FieldError::new(
            field,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}
