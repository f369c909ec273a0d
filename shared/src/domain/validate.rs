//! Small field checks shared by the domain constructors. Each names the field
//! it rejects so the API can say exactly what to fix.

use crate::error::FieldError;

/// A trimmed single-line string of `min..=max` characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, FieldError> {
    checked(field, value, min, max, char::is_control)
}

/// Like [`text`], but line breaks and tabs are allowed (descriptions).
pub fn multiline_text(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, FieldError> {
    checked(field, value, min, max, |c| {
        c.is_control() && !matches!(c, '\n' | '\r' | '\t')
    })
}

fn checked(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    forbidden: impl Fn(char) -> bool,
) -> Result<String, FieldError> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(if min > 0 && len == 0 {
            FieldError::new(field, "must not be empty")
        } else {
            FieldError::new(field, format!("must be {min}-{max} characters (got {len})"))
        });
    }
    if value.chars().any(forbidden) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// An optional trimmed single-line string of at most `max` characters; empty becomes `None`.
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

/// An optional description: like [`optional_text`], line breaks allowed.
pub fn optional_multiline(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => multiline_text(field, v, 1, max).map(Some),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_line_and_descriptions_may_span_lines() {
        assert_eq!(text("name", "  Door  ", 1, 10).unwrap(), "Door");
        assert_eq!(
            text("name", "   ", 1, 10).unwrap_err().message,
            "must not be empty"
        );
        assert!(text("name", "a\nb", 1, 10).is_err());
        assert!(text("name", "\u{9f}", 1, 10).is_err());
        assert_eq!(
            optional_multiline("description", Some("line 1\nline 2"), 50)
                .unwrap()
                .as_deref(),
            Some("line 1\nline 2")
        );
        assert!(optional_multiline("description", Some("bell\u{7}"), 50).is_err());
        assert_eq!(
            text("name", "ééé", 1, 3).unwrap(),
            "ééé",
            "characters, not bytes"
        );
    }
}
