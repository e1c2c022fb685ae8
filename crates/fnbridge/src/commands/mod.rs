//! The client subcommands: what each sends to the API and prints. `run` dispatches a parsed
//! command to its module; the object store's commands (`bucket`, `cp`, `ls`, `rm`) are in
//! `crate::oss`, as they speak S3 to the object store rather than the API.
//!
//! # Layout
//! - `function`: `function ...` (code packages, deploy, invoke, test).
//! - `versions`: `version ...`, `alias ...`, `async-config ...`.
//! - `trigger`: `trigger ...`.
//! - `delivery`: `events put|explain`, `tasks`, `dlq`.
//! - `logs`: `logs` and `--follow`.
//! - `identity`: `key ...`, `role ...`.
//! - `cdn`: `cdn ...`.
//! - `archive`: `archive ...`, `replay ...` (with a progress bar while a replay runs).
//! - `pattern`: `pattern test` (offline).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{
    AliasCmd, ArchiveCmd, AsyncConfigCmd, CdnCmd, CdnDomainCmd, Command, DlqCmd, EventsCmd,
    FunctionCmd, FunctionSpecArgs, Global, KeyCmd, LogsArgs, PatternCmd, PatternTestArgs,
    ReplayCmd, RoleCmd, TasksCmd, TriggerCmd, VersionCmd,
};
use crate::client::{Client, seg};
use crate::output::{self, out, outln};

mod archive;
mod cdn;
mod delivery;
mod function;
mod identity;
mod logs;
mod pattern;
mod trigger;
mod versions;

use archive::*;
use cdn::*;
use delivery::*;
pub use function::*;
use identity::*;
use logs::*;
pub use pattern::*;
use trigger::*;
use versions::*;

const V: &str = "/2023-03-30";

pub fn run(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Function(a) => function(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Version(a) => version(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Alias(a) => alias(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Trigger(a) => trigger(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::AsyncConfig(a) => async_config(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Events(a) => events(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Tasks(a) => tasks(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Dlq(a) => dlq(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Logs(a) => logs(&Client::new(&a.global)?, &a),
        Command::Key(a) => key(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Role(a) => role(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Bucket(a) => crate::oss::bucket(&a.oss, a.cmd),
        Command::Cp(a) => crate::oss::cp(&a),
        Command::Ls(a) => crate::oss::ls(&a),
        Command::Rm(a) => crate::oss::rm(&a),
        Command::Cdn(a) => cdn(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Archive(a) => archive(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Replay(a) => replay(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Serve(_) | Command::Pattern(_) => unreachable!("handled in main"),
    }
}

/// What a delete prints: a sentence for people, a small object for scripts.
fn deleted(g: &Global, what: &str, fields: Value) {
    if g.json {
        let mut v = fields;
        v["deleted"] = json!(true);
        output::json(&v);
    } else {
        outln!("deleted {what}");
    }
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Every item of a paginated list (`limit` / `nextToken`).
fn paged(c: &Client, path: &str, key: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut next = String::new();
    loop {
        let mut rb = c.request(Method::GET, path).query(&[("limit", "100")]);
        if !next.is_empty() {
            rb = rb.query(&[("nextToken", &next)]);
        }
        let v = c.json(rb)?;
        all.extend(v[key].as_array().cloned().unwrap_or_default());
        next = v["nextToken"].as_str().unwrap_or("").to_string();
        if next.is_empty() {
            return Ok(all);
        }
    }
}
