//! Validated values. Each `parse` enforces one rule of API.md and answers `BAD_USER_INPUT`
//! naming the field; past the edge an invalid name cannot exist.

use crate::error::{ApiError, ApiResult};

/// Names nobody may take, because the web app uses them as paths.
pub const RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "api",
    "graphql",
    "new",
    "settings",
    "login",
    "signup",
    "organizations",
    "datasets",
    "user",
    "users",
];

/// A username of a user or an organization: 2–39 ASCII letters, digits, `-` and `_`, starting
/// and ending with a letter or digit, and not reserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Validates `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> ApiResult<Self> {
        let len = value.chars().count();
        if !(2..=39).contains(&len) {
            return Err(ApiError::bad_input(
                field,
                "must be 2 to 39 characters long",
            ));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ApiError::bad_input(
                field,
                "may contain only ASCII letters, digits, '-' and '_'",
            ));
        }
        let bytes = value.as_bytes();
        if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            return Err(ApiError::bad_input(
                field,
                "must start and end with a letter or digit",
            ));
        }
        if RESERVED_USERNAMES.contains(&value.to_ascii_lowercase().as_str()) {
            return Err(ApiError::bad_input(field, "is reserved"));
        }
        Ok(Username(value.to_owned()))
    }

    /// The username as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key (`lower(username)`), unique across all accounts.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// The case-insensitive key of a username looked up (not created): no validation, since a
/// name that could never exist simply finds nothing.
pub fn username_key(value: &str) -> String {
    value.to_ascii_lowercase()
}

/// An email address: syntactically valid (RFC 5322 addr-spec, as the `email_address` crate
/// checks it) and at most 254 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> ApiResult<Self> {
        let value = value.trim();
        if value.len() > 254 || !email_address::EmailAddress::is_valid(value) {
            return Err(ApiError::bad_input(field, "is not a valid email address"));
        }
        // A dotless domain (`a@localhost`) is valid per RFC but never what a user meant.
        let domain = value.rsplit('@').next().unwrap_or_default();
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(ApiError::bad_input(field, "is not a valid email address"));
        }
        Ok(Email(value.to_owned()))
    }

    /// The address as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key, unique among users: the address with its ASCII letters
    /// lowercased. Other letters keep their case: mail systems compare them as they are,
    /// and both databases must compute the same key (see the email-key migration).
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A new password: 8–128 characters.
pub struct Password(String);

impl Password {
    /// Validates `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> ApiResult<Self> {
        let len = value.chars().count();
        if !(8..=128).contains(&len) {
            return Err(ApiError::bad_input(
                field,
                "must be 8 to 128 characters long",
            ));
        }
        Ok(Password(value.to_owned()))
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A dataset name: 1–100 ASCII letters, digits, `-`, `_` and `.`, and not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetName(String);

impl DatasetName {
    /// Validates `value` as the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> ApiResult<Self> {
        let len = value.chars().count();
        if !(1..=100).contains(&len) {
            return Err(ApiError::bad_input(
                field,
                "must be 1 to 100 characters long",
            ));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ApiError::bad_input(
                field,
                "may contain only ASCII letters, digits, '-', '_' and '.'",
            ));
        }
        if value == "." || value == ".." {
            return Err(ApiError::bad_input(field, "may not be '.' or '..'"));
        }
        Ok(DatasetName(value.to_owned()))
    }

    /// The name as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key, unique per owner.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of<T>(r: ApiResult<T>) -> &'static str {
        match r {
            Ok(_) => "OK",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn usernames_follow_every_rule() {
        for ok in [
            "ab",
            "a-b",
            "A_1",
            "x".repeat(39).as_str(),
            "Acme",
            "9lives",
        ] {
            assert_eq!(code_of(Username::parse("username", ok)), "OK", "{ok}");
        }
        for bad in [
            "a",
            "",
            "-ab",
            "ab-",
            "_ab",
            "ab_",
            "a b",
            "a.b",
            "ä-b",
            "x".repeat(40).as_str(),
            "admin",
            "Admin",
            "USERS",
            "graphql",
        ] {
            assert_eq!(
                code_of(Username::parse("username", bad)),
                "BAD_USER_INPUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn dataset_names_follow_every_rule() {
        for ok in [
            "a",
            "street-scenes",
            "v1.2_final",
            ".hidden",
            "x".repeat(100).as_str(),
        ] {
            assert_eq!(code_of(DatasetName::parse("name", ok)), "OK", "{ok}");
        }
        for bad in [".", "..", "", "a/b", "a b", "x".repeat(101).as_str()] {
            assert_eq!(
                code_of(DatasetName::parse("name", bad)),
                "BAD_USER_INPUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn emails_and_passwords() {
        assert_eq!(code_of(Email::parse("email", "jane@example.com")), "OK");
        for bad in [
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "a b@example.com",
        ] {
            assert_eq!(
                code_of(Email::parse("email", bad)),
                "BAD_USER_INPUT",
                "{bad}"
            );
        }
        assert_eq!(code_of(Password::parse("password", "12345678")), "OK");
        assert_eq!(
            code_of(Password::parse("password", "1234567")),
            "BAD_USER_INPUT"
        );
        assert_eq!(
            code_of(Password::parse("password", &"x".repeat(129))),
            "BAD_USER_INPUT"
        );
    }
}
