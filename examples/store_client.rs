//! The baseline of bench/protocols.sh's memcached and etcd rows: a minimal client
//! that does what the benchmarked `memcached_user` / `etcd_user` scenario does, with
//! the same crates (async-memcached; tonic with etcd's KV messages), and prints the
//! operations per second. Each of CONNECTIONS tasks repeats, until SECONDS have
//! passed, one cycle: `memcached`: connect, set `kN` to `hello`, get `kM`, close;
//! `etcd`: connect, put `kN` = `hello`, get `kM` (N, M in 1..=1000). Each operation
//! counts one, as loaddensity counts one request per step.
//!
//! ```text
//! cargo run --release --example store_client -- memcached 127.0.0.1:11211 32 10
//! cargo run --release --example store_client -- etcd 127.0.0.1:2379 32 10
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_memcached::AsciiProtocol;
use http::uri::PathAndQuery;
use loaddensity::protocol::etcd::kv::{PutRequest, PutResponse, RangeRequest, RangeResponse};
use tonic::transport::Endpoint;
use tonic_prost::ProstCodec;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, target, connections, seconds] = args.as_slice() else {
        return Err("usage: store_client memcached|etcd HOST:PORT CONNECTIONS SECONDS".into());
    };
    let connections: u64 = connections.parse()?;
    let duration = Duration::from_secs_f64(seconds.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for seed in 0..connections {
            let (kind, target, done) = (kind.clone(), target.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut keys = Keys(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
                while Instant::now() < deadline {
                    match kind.as_str() {
                        "memcached" => memcached_cycle(&target, &mut keys, &done).await?,
                        "etcd" => etcd_cycle(&target, &mut keys, &done).await?,
                        other => return Err(format!("unknown kind `{other}`").into()),
                    }
                }
                Ok::<(), Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok::<(), Error>(())
    })?;
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    #[allow(clippy::print_stdout)] // the figure bench/protocols.sh reads
    {
        println!("{rate:.1}");
    }
    Ok(())
}

/// `k1` .. `k1000`, as the scenario's `k${randint(1, 1000)}` (xorshift).
struct Keys(u64);

impl Keys {
    fn next(&mut self) -> String {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        format!("k{}", self.0 % 1000 + 1)
    }
}

async fn memcached_cycle(addr: &str, keys: &mut Keys, done: &AtomicU64) -> Result<(), Error> {
    let mut client = async_memcached::Client::new(format!("tcp://{addr}")).await?;
    done.fetch_add(1, Ordering::Relaxed);
    client
        .set(keys.next().as_bytes(), "hello", None, None)
        .await?;
    done.fetch_add(1, Ordering::Relaxed);
    client.get(keys.next().as_bytes()).await?;
    done.fetch_add(1, Ordering::Relaxed);
    drop(client);
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn etcd_cycle(addr: &str, keys: &mut Keys, done: &AtomicU64) -> Result<(), Error> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    done.fetch_add(1, Ordering::Relaxed);
    let put = PutRequest {
        key: keys.next().into_bytes(),
        value: b"hello".to_vec(),
    };
    grpc.ready().await?;
    grpc.unary(
        tonic::Request::new(put),
        PathAndQuery::from_static("/etcdserverpb.KV/Put"),
        ProstCodec::<PutRequest, PutResponse>::default(),
    )
    .await?;
    done.fetch_add(1, Ordering::Relaxed);
    let range = RangeRequest {
        key: keys.next().into_bytes(),
        range_end: Vec::new(),
        limit: 0,
    };
    grpc.ready().await?;
    grpc.unary(
        tonic::Request::new(range),
        PathAndQuery::from_static("/etcdserverpb.KV/Range"),
        ProstCodec::<RangeRequest, RangeResponse>::default(),
    )
    .await?;
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
