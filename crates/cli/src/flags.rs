//! Flag parsers for the model's enums. The model does not depend on clap, so the parser of
//! a `wire_enum!` flag is built here from the enum's own list of spellings and its own
//! `parse`, the one the API and the settings files read it with. The agent's and the
//! server's settings enums derive `clap::ValueEnum` instead (their `clap` feature).

use clap::builder::{PossibleValuesParser, TypedValueParser};

/// The parser of a model enum: one of `spellings` (listed in `--help` and in the error that
/// names a wrong value), read with `parse`.
pub fn wire_enum<T: Clone + Send + Sync + 'static>(
    spellings: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(spellings)
        .try_map(move |text| parse(&text).ok_or_else(|| format!("unknown value '{text}'")))
}
