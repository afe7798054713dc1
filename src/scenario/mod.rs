//! The scenario language every protocol's tasks are written in: the conditions that
//! skip them, the checks on their responses, and the `${...}` placeholders resolved
//! in them. (Which tasks a virtual user runs each iteration, in sequence or one
//! picked by weight, is decided by the engine's plan.)
//!
//! Everything is parsed when the test starts; a user's iteration only renders
//! templates and evaluates parsed checks.

mod check;
mod condition;
mod fake;
pub mod probe;
mod resolver;
mod template;

pub use check::{
    ASSERTION_TYPES, Assertion, EXTRACT_SCOPES, EXTRACT_SOURCES, ExtractFrom, Extractor, JsonPath,
    MAX_CAPTURED_BODY, ResponseView, VariableScope,
};
pub use condition::{Condition, PREDICATES, loose_eq, truthy};
pub use fake::FakeKind;
pub(crate) use resolver::RenderContext;
pub use resolver::{
    CsvData, CsvError, CsvTables, ParameterResolver, ResolverSnapshot, SharedVariables,
    SourceError, SourceKind, value_text,
};
pub(crate) use template::CsvLookup;
pub use template::{Template, TemplateError, TemplateValue};
