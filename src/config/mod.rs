//! Typed proxy configuration: raw TOML structs → validated `Config`.

use std::fmt;

/// The validated proxy configuration.
#[derive(Debug, Clone)]
pub struct Config {}

/// A configuration error naming file, line (where known) and key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

impl Config {
    /// Parses and validates TOML text; `origin` names the file in error messages.
    pub fn from_toml_str(_text: &str, origin: &str) -> Result<Config, ConfigError> {
        Err(ConfigError(format!("{origin}: not implemented yet")))
    }
}
