//! The integration tests, linked into one binary (as ripgrep's and cargo's are): one
//! module per area, with the helpers they share in [`common`]. The library is linked
//! once instead of once per file. `tests/alloc.rs` stays a binary of its own: it
//! installs a counting global allocator, which would see every other test's
//! allocations too.

mod common;
mod grpc_server;

mod amqp;
mod async_http;
mod cli;
mod datadog_apm;
mod db_sources;
mod documents;
mod engine;
mod etcd;
mod fast_http;
mod fuzz_actions;
mod fuzz_documents;
mod fuzz_har;
mod fuzz_line_protocol;
mod fuzz_scenario;
mod fuzz_statsd;
mod graphql_ws;
mod grpc;
mod har;
mod hardening;
mod hardening_cli;
mod history;
mod html_report;
mod http;
mod http3;
mod http_misbehaving_server;
mod influxdb;
mod kubernetes;
mod layering;
mod ld079_examples;
mod live;
mod locust_worker;
mod memcached;
mod merge;
mod mqtt;
mod mtls;
mod nats;
mod nginx;
mod no_false_greens;
mod open_model;
mod opentelemetry;
mod otel_traces;
mod profiles;
mod prometheus;
mod redis;
mod remote_write;
mod reports;
mod request_log;
mod run_context;
mod scenario;
mod segments;
mod session_variables;
mod sla;
mod socket;
mod socket_server;
mod sql;
mod sse;
mod statsd;
mod task_fields;
mod web_ui_browser;
mod websocket;
