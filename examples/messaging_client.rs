//! The baseline of bench/protocols.sh's messaging rows: a minimal client that does
//! what the benchmarked `amqp_user` / `nats_user` scenario does, with the same crates
//! (lapin, async-nats), and prints the operations per second. Each of CONNECTIONS
//! tasks repeats, until SECONDS have passed: connect, PUBLISHES publishes (AMQP: to
//! the default exchange with an unroutable key; NATS: each written to the socket),
//! close; connect, each publish and close count one operation each, as loaddensity
//! counts one request per step.
//!
//! ```text
//! cargo run --release --example messaging_client -- amqp amqp://guest:guest@127.0.0.1:5672/%2F 32 10 100
//! cargo run --release --example messaging_client -- nats nats://127.0.0.1:4222 32 10 100
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, target, connections, seconds, publishes] = args.as_slice() else {
        return Err("usage: messaging_client amqp|nats URL CONNECTIONS SECONDS PUBLISHES".into());
    };
    let connections: usize = connections.parse()?;
    let publishes: u64 = publishes.parse()?;
    let duration = Duration::from_secs_f64(seconds.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (kind, target, done) = (kind.clone(), target.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    match kind.as_str() {
                        "amqp" => amqp_cycle(&target, publishes, deadline, &done).await?,
                        "nats" => nats_cycle(&target, publishes, deadline, &done).await?,
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

async fn amqp_cycle(
    url: &str,
    publishes: u64,
    deadline: Instant,
    done: &AtomicU64,
) -> Result<(), Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    done.fetch_add(1, Ordering::Relaxed);
    for _ in 0..publishes {
        if Instant::now() >= deadline {
            break;
        }
        channel
            .basic_publish(
                "".into(),
                "ld_bench_nowhere".into(),
                BasicPublishOptions::default(),
                b"hello",
                BasicProperties::default(),
            )
            .await?
            .await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    connection.close(200, "OK".into()).await?;
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn nats_cycle(
    url: &str,
    publishes: u64,
    deadline: Instant,
    done: &AtomicU64,
) -> Result<(), Error> {
    let client = async_nats::connect(url).await?;
    done.fetch_add(1, Ordering::Relaxed);
    for _ in 0..publishes {
        if Instant::now() >= deadline {
            break;
        }
        client.publish("ld.bench", "hello".into()).await?;
        client.flush().await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    client.flush().await?;
    client.drain().await?;
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
