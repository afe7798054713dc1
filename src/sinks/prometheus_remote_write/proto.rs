//! The messages of Prometheus remote write 1.0, as `prost` structs.
//!
//! Written from the protocol's definitions in the Prometheus repository,
//! `prompb/remote.proto` (`WriteRequest`) and `prompb/types.proto` (`TimeSeries`,
//! `Label`, `Sample`), keeping their field numbers; the fields this sink never sends
//! (metadata, exemplars, native histograms) are left out, which the protobuf wire
//! format allows. Spec: <https://prometheus.io/docs/specs/prw/remote_write_spec/>.

/// `prometheus.WriteRequest`: the body of one push (before snappy compression).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    /// The series, each with its labels and samples.
    #[prost(message, repeated, tag = "1")]
    pub(crate) timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    /// The labels, `__name__` included, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub(crate) labels: Vec<Label>,
    /// The samples.
    #[prost(message, repeated, tag = "2")]
    pub(crate) samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub(crate) value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub(crate) timestamp: i64,
}
