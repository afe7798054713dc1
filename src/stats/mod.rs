//! Request statistics: a listener that records into per-thread HDR histograms
//! ([`StatsRecorder`]), and the summary built from them ([`Summary`]).

pub mod document;
pub mod merge;
mod recorder;
mod summary;
mod table;
mod timeline;

pub use document::{
    Histograms, LoadDescription, ResponseSample, ResultDocument, ResultError, RunInfo,
    SlaGateResult,
};
pub use merge::{MergeError, merge_results};
pub use recorder::{EndpointStats, EndpointTotals, RECENT_SECONDS, StatsRecorder, StatsSnapshot};
pub use summary::{ErrorCount, LatencyOverall, NameStats, Summary, Totals};
pub use table::render_table;
pub use timeline::TimelineEntry;
