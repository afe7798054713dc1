//! The series a push carries: the pull exporter's series (same names, labels and
//! buckets, see [`crate::sinks::prometheus`]) plus `job` and `instance`, each with one
//! sample at the push time, encoded as a snappy-compressed `WriteRequest`.

use std::collections::BTreeMap;

use prost::Message as _;

use super::proto::{Label, Sample, TimeSeries, WriteRequest};
use crate::sinks::prometheus::{
    BYTES, BYTES_BUCKETS, Hist, LATENCY, LATENCY_BUCKETS_MS, OUTCOMES, REQUESTS, SeriesData,
    SeriesKey,
};

/// Builds the request for a snapshot of the recorded data. `common` labels (`job`,
/// `instance`) are added to every series.
pub(crate) fn write_request(
    merged: &BTreeMap<SeriesKey, SeriesData>,
    common: &[(&str, &str)],
    timestamp_ms: i64,
) -> WriteRequest {
    let mut builder = Builder {
        common,
        timestamp_ms,
        series: Vec::with_capacity(merged.len() * 32),
    };
    let requests = format!("{REQUESTS}_total");
    for (key, data) in merged {
        for (outcome, count) in OUTCOMES.iter().zip(data.outcomes) {
            // The pull exporter leaves out outcomes that never happened.
            if count != 0 {
                builder.push(&requests, key, &[("outcome", outcome)], count as f64);
            }
        }
    }
    for (key, data) in merged {
        builder.histogram(LATENCY, key, &data.latency_ms, &LATENCY_BUCKETS_MS);
    }
    for (key, data) in merged {
        builder.histogram(BYTES, key, &data.bytes, &BYTES_BUCKETS);
    }
    WriteRequest {
        timeseries: builder.series,
    }
}

/// The snappy-compressed (block format) protobuf body of a request.
pub(crate) fn encode(request: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())
}

struct Builder<'a> {
    common: &'a [(&'a str, &'a str)],
    timestamp_ms: i64,
    series: Vec<TimeSeries>,
}

impl Builder<'_> {
    fn push(&mut self, name: &str, key: &SeriesKey, extra: &[(&str, &str)], value: f64) {
        let mut labels: Vec<Label> = [("__name__", name)]
            .iter()
            .chain(self.common)
            .chain(&[("request_type", &*key.request_type), ("name", &*key.name)])
            .chain(extra)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| Label {
                name: (*name).to_string(),
                value: (*value).to_string(),
            })
            .collect();
        // Remote write requires labels sorted by name.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        self.series.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value,
                timestamp: self.timestamp_ms,
            }],
        });
    }

    /// `_bucket` series (cumulative, `le` formatted as the pull exporter does: `5.0`,
    /// `+Inf`), then `_sum` and `_count`.
    fn histogram<const N: usize>(
        &mut self,
        family: &str,
        key: &SeriesKey,
        hist: &Hist<N>,
        bounds: &[f64; N],
    ) {
        let bucket = format!("{family}_bucket");
        let mut cumulative = 0u64;
        for (bound, count) in bounds.iter().zip(hist.buckets) {
            cumulative += count;
            let le = format!("{bound:?}");
            self.push(&bucket, key, &[("le", &le)], cumulative as f64);
        }
        self.push(&bucket, key, &[("le", "+Inf")], hist.count as f64);
        self.push(&format!("{family}_sum"), key, &[], hist.sum);
        self.push(&format!("{family}_count"), key, &[], hist.count as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost::Message as _;

    use super::*;

    fn labels(series: &TimeSeries) -> Vec<(String, String)> {
        series
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }

    #[test]
    fn same_series_as_the_pull_exporter_plus_job_and_instance() {
        let mut data = SeriesData {
            outcomes: [3, 0],
            ..Default::default()
        };
        data.latency_ms.count = 3;
        data.latency_ms.sum = 21.0;
        data.latency_ms.buckets[1] = 2; // <= 10 ms
        data.latency_ms.buckets[3] = 1; // <= 50 ms
        data.bytes.count = 3;
        data.bytes.buckets[0] = 3;
        let key = SeriesKey {
            request_type: Arc::from("GET"),
            name: Arc::from("/a"),
        };
        let merged = BTreeMap::from([(key, data)]);
        let request = write_request(
            &merged,
            &[("job", "loaddensity"), ("instance", "pod-1")],
            1_700_000_000_000,
        );
        // 1 counter + (11 + 1 + 2) latency + (8 + 1 + 2) bytes.
        assert_eq!(request.timeseries.len(), 1 + 14 + 11);
        let first = &request.timeseries[0];
        assert_eq!(
            labels(first),
            [
                ("__name__", "loaddensity_requests_total"),
                ("instance", "pod-1"),
                ("job", "loaddensity"),
                ("name", "/a"),
                ("outcome", "success"),
                ("request_type", "GET"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(first.samples[0].value, 3.0);
        let value_of = |le: &str| {
            request
                .timeseries
                .iter()
                .find(|s| {
                    s.labels
                        .iter()
                        .any(|l| l.value == "loaddensity_request_latency_ms_bucket")
                        && s.labels.iter().any(|l| l.name == "le" && l.value == le)
                })
                .map(|s| s.samples[0].value)
        };
        assert_eq!(value_of("5.0"), Some(0.0));
        assert_eq!(value_of("10.0"), Some(2.0));
        assert_eq!(value_of("50.0"), Some(3.0));
        assert_eq!(value_of("+Inf"), Some(3.0));
        // Round trip through snappy and protobuf.
        let body = encode(&request).expect("compresses");
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("decompresses");
        assert_eq!(
            WriteRequest::decode(raw.as_slice()).expect("decodes"),
            request
        );
    }
}
