//! The integration tests, linked into one binary (as ripgrep's and cargo's are): one
//! module per area, with the helpers they share in [`common`]. The library is linked
//! once instead of once per file. `tests/alloc.rs` stays a binary of its own: it
//! installs a counting global allocator, which would see every other test's
//! allocations too.

mod common;
mod grpc_server;

mod cli;
mod datadog_apm;
mod engine;
mod fast_http;
mod fuzz_actions;
mod fuzz_har;
mod fuzz_line_protocol;
mod fuzz_scenario;
mod fuzz_statsd;
mod grpc;
mod har;
mod hardening;
mod hardening_cli;
mod history;
mod html_report;
mod http;
mod http_misbehaving_server;
mod influxdb;
mod kubernetes;
mod layering;
mod locust_worker;
mod merge;
mod mqtt;
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
mod sla;
mod socket;
mod socket_server;
mod statsd;
mod websocket;
