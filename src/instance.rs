//! The name of this loaddensity instance when several run one test together
//! (`--instance NAME`, default the host name, which is the pod name on Kubernetes).
//!
//! It is process-wide, like the sinks that label their output with it: the InfluxDB
//! sink adds an `instance` tag, OpenTelemetry sets `service.instance.id`, and the
//! Prometheus remote-write sink an `instance` label. When no name is set (a single
//! instance without `--segment` or `--instance`), the InfluxDB and OpenTelemetry
//! output keeps its plain tag set.

use std::sync::RwLock;

static INSTANCE: RwLock<Option<String>> = RwLock::new(None);

/// Sets (or with `None` clears) the instance name the sinks label their output with.
/// Sinks read it when they start.
pub fn set_instance_name(name: Option<String>) {
    let mut slot = INSTANCE.write().unwrap_or_else(|p| p.into_inner());
    *slot = name.filter(|n| !n.is_empty());
}

/// The instance name, when one was set.
pub fn instance_name() -> Option<String> {
    INSTANCE.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The host name (on Kubernetes, the pod name), or `localhost` when it cannot be read.
pub fn host_name() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::{host_name, instance_name, set_instance_name};

    #[test]
    fn set_read_and_clear() {
        set_instance_name(Some("pod-2".into()));
        assert_eq!(instance_name().as_deref(), Some("pod-2"));
        set_instance_name(Some(String::new()));
        assert_eq!(instance_name(), None);
        assert!(!host_name().is_empty());
    }
}
