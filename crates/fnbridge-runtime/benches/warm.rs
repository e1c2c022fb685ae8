//! Warm and cold invoke latency of a no-op Python handler through `Runtime::invoke`, against
//! the same handler called in a plain Python loop and a bare `python3 -c` start.
//!
//! Run: `cargo bench -p fnbridge-runtime --bench warm` (figures in BENCHMARKS.md);
//! `FNBRIDGE_BENCH_COLD=N` interleaves N cold starts of each kind (default 15).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fnbridge_runtime::{
    Credentials, FunctionSpec, Invocation, Runtime, RuntimeConfig, SandboxConfig,
};

const WARM_CALLS: usize = 20_000;
const COLD_STARTS: usize = 15;
const THROUGHPUT_CALLS: usize = 40_000;
const HANDLER: &str = "def handler(event, context):\n    pass\n";
/// A CDN LogFileCreated event, the typical payload.
const EVENT: &str = include_str!("../tests/fixtures/seed_001_log_file_created.json");

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("index.py"), HANDLER).unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        work_dir: dir.path().join("work"),
        max_instances_per_function: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let python = runtime.python().to_owned();
    println!("interpreter: {}", python.display());
    println!(
        "sandboxed: {}, memory cgroups: {}",
        runtime.sandboxed(),
        runtime.memory_cgroups()
    );
    println!("payload: {} bytes", EVENT.len());

    // Warm, one at a time.
    let spec = function("noop", &code);
    for i in 0..1000 {
        runtime.invoke(&spec, invocation(i)).await.unwrap();
    }
    // Three rounds: the machine is shared, so the best round is the least disturbed one.
    let (py50, py99) = python_loop(&python, &code);
    let mut best = (Duration::MAX, Duration::MAX, Duration::MAX);
    for round in 1..=3 {
        let mut warm = Vec::with_capacity(WARM_CALLS);
        let mut handler_time = Vec::with_capacity(WARM_CALLS);
        let started = Instant::now();
        for i in 0..WARM_CALLS {
            let t = Instant::now();
            let out = runtime.invoke(&spec, invocation(i)).await.unwrap();
            warm.push(t.elapsed());
            handler_time.push(out.duration);
            assert!(out.error.is_none());
        }
        let rate = WARM_CALLS as f64 / started.elapsed().as_secs_f64();
        let (w50, w99) = percentiles(&mut warm);
        let (d50, _) = percentiles(&mut handler_time);
        println!(
            "round {round}: warm Runtime::invoke, sequential, {WARM_CALLS} calls: p50 {} us, p99 {} us, worker round trip p50 {} us ({rate:.0} calls/s)",
            us(w50),
            us(w99),
            us(d50)
        );
        if w50 < best.0 {
            best = (w50, w99, d50);
        }
    }
    let (w50, w99, d50) = best;
    println!(
        "best round: warm p50 {} us, p99 {} us, worker round trip (InvokeOutcome.duration) p50 {} us",
        us(w50),
        us(w99),
        us(d50)
    );
    println!(
        "same handler in a plain Python loop: p50 {:.2} us, p99 {:.2} us",
        py50, py99
    );
    println!("warm overhead p50: {:.1} us", us_f(w50) - py50);

    // Throughput with both instances busy: 8 callers, 2 instances (2 cores).
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let runtime = runtime.clone();
            let spec = spec.clone();
            tokio::spawn(async move {
                for i in 0..THROUGHPUT_CALLS / 8 {
                    runtime
                        .invoke(&spec, invocation(t * 1_000_000 + i))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = THROUGHPUT_CALLS as f64 / started.elapsed().as_secs_f64();
    println!("throughput, 8 callers on 2 instances: {rate:.0} invocations/s");

    // Cold: the first invocation of a new function, so a new instance every time.
    let mut cold = Vec::new();
    for i in 0..COLD_STARTS {
        let spec = function(&format!("cold-{i}"), &code);
        let t = Instant::now();
        runtime.invoke(&spec, invocation(i)).await.unwrap();
        cold.push(t.elapsed());
        runtime.retire(&spec.function_name);
    }
    // The sandbox's share of a cold start: the same starts, interleaved, with it (spare jails
    // as configured by default), with it but no spare jails, and without it.
    let no_spares = Runtime::new(RuntimeConfig {
        work_dir: dir.path().join("work-no-spares"),
        max_instances_per_function: 2,
        sandbox: SandboxConfig {
            spares: 0,
            ..SandboxConfig::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plain = Runtime::new(RuntimeConfig {
        work_dir: dir.path().join("work-plain"),
        max_instances_per_function: 2,
        sandbox: SandboxConfig {
            enabled: false,
            ..SandboxConfig::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap();
    let (mut with, mut bare_jails, mut without) = (Vec::new(), Vec::new(), Vec::new());
    let pairs: usize = std::env::var("FNBRIDGE_BENCH_COLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(COLD_STARTS);
    for i in 0..pairs {
        for (rt, out) in [
            (&runtime, &mut with),
            (&no_spares, &mut bare_jails),
            (&plain, &mut without),
        ] {
            let spec = function(&format!("pair-{i}"), &code);
            let t = Instant::now();
            let o = rt.invoke(&spec, invocation(i)).await.unwrap();
            out.push(t.elapsed());
            assert!(o.error.is_none());
            rt.retire(&spec.function_name);
        }
    }
    let (s50, smax) = percentiles(&mut with);
    let (n50, nmax) = percentiles(&mut bare_jails);
    let (p50, pmax) = percentiles(&mut without);
    println!(
        "cold start, interleaved x{pairs}: sandboxed p50 {} ms (max {} ms), sandboxed without spare jails p50 {} ms (max {} ms), unsandboxed p50 {} ms (max {} ms); added p50 {:.1} ms (without spare jails {:.1} ms)",
        ms(s50),
        ms(smax),
        ms(n50),
        ms(nmax),
        ms(p50),
        ms(pmax),
        (s50.as_secs_f64() - p50.as_secs_f64()) * 1000.0,
        (n50.as_secs_f64() - p50.as_secs_f64()) * 1000.0
    );
    no_spares.shutdown().await;
    plain.shutdown().await;
    let mut bare = time_process(&python, &["-c", "pass"], &code);
    let import = format!(
        "import sys; sys.path.insert(0, {:?}); import index",
        code.display().to_string()
    );
    let mut bare_import = time_process(&python, &["-c", &import], &code);
    let mut shim = time_process(Path::new("python3"), &["-c", "pass"], &code);
    let (c50, c99) = percentiles(&mut cold);
    println!(
        "cold start (first invocation on a new instance): p50 {} ms, max {} ms",
        ms(c50),
        ms(c99)
    );
    println!(
        "python3 -c pass (resolved interpreter): p50 {} ms",
        ms(percentiles(&mut bare).0)
    );
    println!(
        "python3 -c 'import index' (resolved interpreter): p50 {} ms",
        ms(percentiles(&mut bare_import).0)
    );
    println!(
        "python3 -c pass via PATH (\"python3\"): p50 {} ms",
        ms(percentiles(&mut shim).0)
    );
    runtime.shutdown().await;
}

fn function(name: &str, code: &Path) -> Arc<FunctionSpec> {
    Arc::new(FunctionSpec {
        function_name: name.to_owned(),
        revision: "r1".to_owned(),
        runtime: "python3.10".to_owned(),
        handler: "index.handler".to_owned(),
        code_dir: code.to_owned(),
        memory_mb: 128,
        timeout: Duration::from_secs(10),
        env: Default::default(),
        initializer: None,
        pre_stop: None,
        instance_concurrency: 1,
        custom: None,
        credentials_in_env: true,
        credentials_in_request: true,
    })
}

fn invocation(i: usize) -> Invocation {
    Invocation {
        request_id: format!("1-65362416-{i:024x}"),
        payload: Bytes::from_static(EVENT.as_bytes()),
        qualifier: "LATEST".to_owned(),
        version_id: String::new(),
        credentials: Credentials {
            access_key_id: "STS.bench".to_owned(),
            access_key_secret: "secret".to_owned(),
            security_token: "token".to_owned(),
        },
    }
}

/// p50 and p99 (µs) of calling the handler in-process, timing each call with perf_counter.
fn python_loop(python: &Path, code: &Path) -> (f64, f64) {
    let script = format!(
        r#"
import sys, time
sys.path.insert(0, {code:?})
import index
event = open({event:?}, "rb").read()
class C: pass
ctx = C()
h = index.handler
pc = time.perf_counter
for _ in range(1000): h(event, ctx)
t = []
for _ in range({n}):
    a = pc(); h(event, ctx); t.append(pc() - a)
t.sort()
print(t[len(t) // 2] * 1e6, t[len(t) * 99 // 100] * 1e6)
"#,
        code = code.display().to_string(),
        event = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/seed_001_log_file_created.json"
        ),
        n = WARM_CALLS,
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut nums = text.split_whitespace().map(|n| n.parse::<f64>().unwrap());
    (nums.next().unwrap(), nums.next().unwrap())
}

fn time_process(program: &Path, args: &[&str], cwd: &Path) -> Vec<Duration> {
    (0..COLD_STARTS)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new(program)
                .args(args)
                .current_dir(cwd)
                .status()
                .unwrap();
            assert!(status.success());
            t.elapsed()
        })
        .collect()
}

fn percentiles(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

fn us(d: Duration) -> String {
    format!("{:.1}", us_f(d))
}

fn us_f(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}
