//! What one execution segment of a script runs, for `loaddensity validate --segment`:
//! each `LD_start_test`'s slice (users, rates, CSV rows) described in one line.

use super::commands::{START_TEST_PARAMS, StartTestArgs};
use super::{ActionError, DocumentError, actions};
use crate::segment::Segment;

/// One `LD_start_test`'s slice: its action index, and its description or why it is
/// invalid for the segment.
pub type SegmentSlice = (usize, Result<String, ActionError>);

/// The slice of every `LD_start_test` of a document for `segment`: the action index
/// with a description of the slice, or why the test is invalid for that segment.
pub fn segment_slices(
    document: &serde_json::Value,
    source_name: &str,
    segment: &Segment,
) -> Result<Vec<SegmentSlice>, DocumentError> {
    let mut slices = Vec::new();
    for (index, action) in actions(document, source_name)?.into_iter().enumerate() {
        let Ok(action) = action else { continue };
        if action.command != "LD_start_test" {
            continue;
        }
        let slice = action
            .args
            .parse::<StartTestArgs>(START_TEST_PARAMS)
            .and_then(|args| args.describe_segment(segment));
        slices.push((index, slice));
    }
    Ok(slices)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::segment_slices;
    use crate::segment::Segment;

    #[test]
    fn describes_each_test_slice() {
        let document = json!([
            ["LD_sleep", {"seconds": 0}],
            ["LD_start_test", {"user_count": 10, "spawn_rate": 3, "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]}],
            ["LD_start_test", {"tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}],
                "arrival_rate": {"rate": 3000, "max_users": 2}}],
        ]);
        let segment = Segment::new(2, 3).expect("valid");
        let slices = segment_slices(&document, "t.json", &segment).expect("a document");
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0].0, 1);
        assert_eq!(
            slices[0].1.as_ref().expect("valid"),
            "closed model: 4 users at 1/s"
        );
        let first = Segment::new(0, 3).expect("valid");
        let slices = segment_slices(&document, "t.json", &first).expect("a document");
        let error = slices[1].1.as_ref().expect_err("no user for 0/3");
        assert!(error.to_string().contains("max_users"), "{error}");
    }
}
