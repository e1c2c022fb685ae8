//! CreateFunction, GetFunction, UpdateFunction, DeleteFunction, ListFunctions (fc-api.md §5).
//!
//! A deployment is checked completely before anything is stored: the zip unpacks safely, the
//! handler's module exists and imports, and only then is the function written; a failed
//! deployment leaves the previous one (or nothing) in place.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_dispatch::ids;
use fnbridge_event::{CustomRuntimeConfig, FunctionConfig, LifecycleHook};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body;
use crate::code;
use crate::error::ApiError;
use crate::router::AppState;
use crate::time::now_rfc3339;
use crate::validate;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FunctionInput {
    function_name: Option<String>,
    runtime: Option<String>,
    handler: Option<String>,
    code: Option<CodeInput>,
    memory_size: Option<u32>,
    timeout: Option<u32>,
    cpu: Option<f64>,
    disk_size: Option<u32>,
    instance_concurrency: Option<u32>,
    environment_variables: Option<BTreeMap<String, String>>,
    role: Option<String>,
    description: Option<String>,
    instance_lifecycle_config: Option<LifecycleInput>,
    internet_access: Option<bool>,
    custom_runtime_config: Option<Value>,
    disable_inject_credentials: Option<String>,
    /// FC 2.0 spellings, accepted as aliases of `instanceLifecycleConfig.initializer`.
    initializer: Option<String>,
    initialization_timeout: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CodeInput {
    zip_file: Option<String>,
    oss_bucket_name: Option<String>,
    oss_object_name: Option<String>,
    checksum: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LifecycleInput {
    initializer: Option<HookInput>,
    pre_stop: Option<HookInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HookInput {
    handler: Option<String>,
    timeout: Option<u32>,
    command: Option<Vec<String>>,
}

/// The FC `Function` shape for a stored function.
/// Adds `interpreter`, what runs a Python function on this server (`Python 3.10.13`, or the
/// nearest version and a note when the host lacks the one its runtime names). An extension of
/// FC's shape: clients ignore fields they do not know.
fn with_interpreter(state: &AppState, f: &FunctionConfig, mut v: Value) -> Value {
    if let Ok(Some(what)) = state
        .dispatcher
        .runtime()
        .interpreter_for(f.runtime.as_str())
    {
        v["interpreter"] = json!(what);
    }
    v
}

pub(crate) fn to_json(f: &FunctionConfig, region: &str, account: &str) -> Value {
    let mut lifecycle = serde_json::Map::new();
    if let Some(h) = &f.initializer {
        lifecycle.insert(
            "initializer".into(),
            json!({"handler": h.handler, "timeout": h.timeout}),
        );
    }
    if let Some(h) = &f.pre_stop {
        lifecycle.insert(
            "preStop".into(),
            json!({"handler": h.handler, "timeout": h.timeout}),
        );
    }
    let mut v = json!({
        "functionId": f.function_id,
        "functionName": f.function_name,
        "functionArn": f.arn(region, account),
        "runtime": f.runtime,
        "handler": f.handler,
        "memorySize": f.memory_size,
        "timeout": f.timeout,
        "instanceConcurrency": f.instance_concurrency,
        "environmentVariables": f.environment_variables,
        "description": f.description,
        "codeSize": f.code_size,
        "codeChecksum": f.code_checksum,
        "createdTime": f.created_time,
        "lastModifiedTime": f.last_modified_time,
        "state": "Active",
        "lastUpdateStatus": "Successful",
        "instanceLifecycleConfig": lifecycle,
    });
    let o = v.as_object_mut().expect("object literal");
    if let Some(c) = f.cpu {
        o.insert("cpu".into(), json!(c));
    }
    if let Some(d) = f.disk_size {
        o.insert("diskSize".into(), json!(d));
    }
    if let Some(r) = &f.role {
        o.insert("role".into(), json!(r));
    }
    if let Some(i) = f.internet_access {
        o.insert("internetAccess".into(), json!(i));
    }
    if let Some(d) = f.disable_inject_credentials {
        o.insert("disableInjectCredentials".into(), json!(d.as_str()));
    }
    if let Some(c) = &f.custom_runtime_config {
        o.insert("customRuntimeConfig".into(), json!(c));
    }
    for (k, val) in &f.fc_settings {
        o.insert(k.clone(), val.clone());
    }
    v
}

/// Fields of FC's `CreateFunctionInput`/`UpdateFunctionInput` (SDK 4.8.3) that fnbridge keeps
/// and echoes without acting on them: refusing them would break code written for FC, and
/// dropping them silently would lose what the caller set.
const KEPT_FC_FIELDS: &[&str] = &[
    "customContainerConfig",
    "customDNS",
    "disableOndemand",
    "enableLongLiving",
    "gpuConfig",
    "idleTimeout",
    "instanceIsolationMode",
    "juiceFsConfig",
    "layers",
    "logConfig",
    "microSandboxConfig",
    "nasConfig",
    "ossMountConfig",
    "polarFsConfig",
    "resourceGroupId",
    "sessionAffinity",
    "sessionAffinityConfig",
    "tags",
    "tracingConfig",
    "vpcConfig",
];

/// Most bytes of kept-but-unused FC settings per function (their JSON).
const MAX_FC_SETTINGS: usize = 16 * 1024;

/// Parses a CreateFunction/UpdateFunction body: the FC fields fnbridge keeps without acting on
/// are set apart (a `null` one means "unset"), everything else must be a field fnbridge knows.
fn function_input(
    body: &Bytes,
) -> Result<(FunctionInput, BTreeMap<String, Option<Value>>), ApiError> {
    let mut map: serde_json::Map<String, Value> = body::json(body)?;
    let mut kept = BTreeMap::new();
    for k in KEPT_FC_FIELDS {
        if let Some(v) = map.remove(*k) {
            kept.insert((*k).to_owned(), (!v.is_null()).then_some(v));
        }
    }
    let size: usize = kept.values().flatten().map(|v| v.to_string().len()).sum();
    if size > MAX_FC_SETTINGS {
        return Err(ApiError::invalid(format!(
            "{}: {size} bytes in all, more than the {MAX_FC_SETTINGS} fnbridge keeps",
            kept.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if !kept.is_empty() {
        tracing::info!(
            fields = %kept.keys().cloned().collect::<Vec<_>>().join(","),
            "FC settings kept and echoed, not acted on by fnbridge"
        );
    }
    let input = serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))?;
    Ok((input, kept))
}

fn apply_kept(f: &mut FunctionConfig, kept: BTreeMap<String, Option<Value>>) {
    for (k, v) in kept {
        match v {
            Some(v) => f.fc_settings.insert(k, v),
            None => f.fc_settings.remove(&k),
        };
    }
}

/// Hook handlers are checked as Python names when the runtime is Python; for custom runtimes the
/// handler is informational (the platform calls `/initialize` and `/pre-stop`).
fn hook(field: &str, h: Option<HookInput>) -> Result<Option<LifecycleHook>, String> {
    let Some(h) = h else { return Ok(None) };
    if h.command.is_some() {
        return Err(format!(
            "{field}.command: command hooks are not supported; use handler"
        ));
    }
    let Some(handler) = h.handler.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let timeout = h.timeout.unwrap_or(3);
    validate::timeout(&format!("{field}.timeout"), timeout, 600)?;
    Ok(Some(LifecycleHook { handler, timeout }))
}

/// Applies `input` over `base` (all fields for create, present fields for update) and validates
/// the result as a whole, collecting every problem into one message.
fn merge(
    mut f: FunctionConfig,
    input: FunctionInput,
) -> Result<(FunctionConfig, Option<CodeInput>), String> {
    let mut errors = Vec::new();
    if let Some(r) = &input.runtime {
        match validate::runtime(r) {
            Ok(r) => f.runtime = r,
            Err(e) => errors.push(e),
        }
    }
    if let Some(h) = input.handler {
        f.handler = h;
    }
    if let Some(m) = input.memory_size {
        f.memory_size = m;
    }
    if let Some(t) = input.timeout {
        f.timeout = t;
    }
    if let Some(c) = input.instance_concurrency {
        f.instance_concurrency = c;
    }
    if let Some(e) = input.environment_variables {
        f.environment_variables = e;
    }
    if let Some(d) = input.description {
        f.description = d;
    }
    if input.cpu.is_some() {
        f.cpu = input.cpu;
    }
    if input.disk_size.is_some() {
        f.disk_size = input.disk_size;
    }
    if input.role.is_some() {
        f.role = input.role;
    }
    if input.internet_access.is_some() {
        f.internet_access = input.internet_access;
    }
    if let Some(c) = &input.custom_runtime_config {
        match CustomRuntimeConfig::parse(c) {
            Ok(c) => f.custom_runtime_config = Some(c),
            Err(e) => errors.push(e),
        }
    }
    if let Some(d) = &input.disable_inject_credentials {
        match fnbridge_event::DisableInjectCredentials::parse(d) {
            Some(d) => f.disable_inject_credentials = Some(d),
            None => errors.push(format!(
                "disableInjectCredentials: '{d}' must be one of None, Env, Request, All"
            )),
        }
    }
    if let Some(lc) = input.instance_lifecycle_config {
        match hook("instanceLifecycleConfig.initializer", lc.initializer) {
            Ok(h) => f.initializer = h,
            Err(e) => errors.push(e),
        }
        match hook("instanceLifecycleConfig.preStop", lc.pre_stop) {
            Ok(h) => f.pre_stop = h,
            Err(e) => errors.push(e),
        }
    }
    if let Some(init) = input.initializer {
        let h = HookInput {
            handler: Some(init),
            timeout: input.initialization_timeout,
            command: None,
        };
        match hook("initializer", Some(h)) {
            Ok(h) => f.initializer = h,
            Err(e) => errors.push(e),
        }
    }
    if f.is_python() {
        for (field, h) in [
            ("handler", Some(&f.handler)),
            (
                "instanceLifecycleConfig.initializer.handler",
                f.initializer.as_ref().map(|h| &h.handler),
            ),
            (
                "instanceLifecycleConfig.preStop.handler",
                f.pre_stop.as_ref().map(|h| &h.handler),
            ),
        ] {
            if let Some(h) = h
                && let Err(e) = validate::python_handler(field, h)
            {
                errors.push(e);
            }
        }
    } else if f.handler.is_empty() {
        errors.push(
            "handler: must not be empty (custom runtimes pass it on as FC_FUNCTION_HANDLER)".into(),
        );
    }
    if f.custom_runtime_config.is_some() && !f.is_custom() {
        errors.push(format!(
            "customRuntimeConfig: only for custom runtimes, not '{}'",
            f.runtime
        ));
    }
    let checks = [
        validate::memory_size(f.memory_size),
        validate::timeout("timeout", f.timeout, 86_400),
        validate::environment(&f.environment_variables),
    ];
    errors.extend(checks.into_iter().filter_map(Result::err));
    if !(1..=200).contains(&f.instance_concurrency) {
        errors.push(format!(
            "instanceConcurrency: {} must be between 1 and 200",
            f.instance_concurrency
        ));
    }
    if let Some(c) = f.cpu {
        let steps = (c / 0.05).round();
        if !(0.05..=16.0).contains(&c) || (steps * 0.05 - c).abs() > 1e-9 {
            errors.push(format!(
                "cpu: {c} must be a multiple of 0.05 between 0.05 and 16"
            ));
        }
    }
    if let Some(d) = f.disk_size
        && d != 512
        && d != 10240
    {
        errors.push(format!("diskSize: {d} must be 512 or 10240"));
    }
    if f.description.len() > fnbridge_event::limits::MAX_DESCRIPTION {
        errors.push(format!(
            "description: longer than {} bytes",
            fnbridge_event::limits::MAX_DESCRIPTION
        ));
    }
    if errors.is_empty() {
        Ok((f, input.code))
    } else {
        Err(errors.join("; "))
    }
}

/// Decodes, checks and unpacks a code package into a new revision directory, and checks that
/// the handler imports. Returns (revision, size, checksum).
async fn deploy_code(
    state: &AppState,
    f: &FunctionConfig,
    code: CodeInput,
) -> Result<(String, u64, String), ApiError> {
    if code.oss_bucket_name.is_some() || code.oss_object_name.is_some() {
        return Err(ApiError::invalid(
            "code.ossBucketName: code from the object store is not supported yet; send code.zipFile",
        ));
    }
    let Some(b64) = code.zip_file else {
        return Err(ApiError::invalid(
            "code.zipFile: required (a base64-encoded zip of the code directory)",
        ));
    };
    let zip = code::decode_zip(&b64).map_err(ApiError::invalid)?;
    let checksum = code::crc64(&zip).to_string();
    if let Some(expected) = code.checksum
        && expected != checksum
    {
        return Err(ApiError::invalid(format!(
            "code.checksum: '{expected}' does not match the CRC-64 of the zip ({checksum})"
        )));
    }
    // A python3.X this host lacks is refused here when the operator asked for exact versions.
    state
        .dispatcher
        .runtime()
        .interpreter_for(f.runtime.as_str())
        .map_err(|e| ApiError::invalid(format!("runtime: {e}")))?;
    let revision = ids::hex_token(8);
    let dir = state.dispatcher.code_dir(&f.function_name, &revision);
    let size = zip.len() as u64;
    let d = dir.clone();
    tokio::task::spawn_blocking(move || code::unpack(&zip, &d))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
    let checked = async {
        if f.is_python() {
            crate::deps::install_requirements(state.dispatcher.runtime(), f.runtime.as_str(), &dir)
                .await
                .map_err(ApiError::from)?;
        }
        check_handler(state, f, &dir).await
    };
    if let Err(e) = checked.await {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    Ok((revision, size, checksum))
}

async fn check_handler(
    state: &AppState,
    f: &FunctionConfig,
    dir: &std::path::Path,
) -> Result<(), ApiError> {
    if f.is_custom() {
        return check_custom_start(f, dir);
    }
    let mut handlers = vec![("handler", f.handler.clone())];
    if let Some(h) = &f.pre_stop {
        handlers.push(("instanceLifecycleConfig.preStop.handler", h.handler.clone()));
    }
    if let Some(h) = &f.initializer {
        handlers.push((
            "instanceLifecycleConfig.initializer.handler",
            h.handler.clone(),
        ));
    }
    for (field, h) in handlers {
        fnbridge_runtime::check_python_handler(&state.python, dir, &h)
            .await
            .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
    }
    Ok(())
}

/// A custom runtime without `command` starts `./bootstrap` from the code: it must be there and
/// executable (FC's CAFileNotFound / CAFilePermission, reported at deploy instead of first use).
fn check_custom_start(f: &FunctionConfig, dir: &std::path::Path) -> Result<(), ApiError> {
    let command = f
        .custom_runtime_config
        .as_ref()
        .and_then(|c| c.command.first())
        .map(String::as_str);
    let rel = match command {
        None => "bootstrap",
        // A relative path names a file in the code; a bare name is looked up on PATH at start.
        Some(c) if c.starts_with("./") => c.trim_start_matches("./"),
        Some(_) => return Ok(()),
    };
    let path = dir.join(rel);
    let meta = std::fs::metadata(&path).map_err(|_| {
        ApiError::invalid(format!(
            "customRuntimeConfig.command: '{rel}' not found in the code (set command, or include an executable '{rel}')"
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(ApiError::invalid(format!(
                "customRuntimeConfig.command: '{rel}' in the code is not executable"
            )));
        }
    }
    let _ = meta;
    Ok(())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (input, kept) = function_input(&body)?;
    let name = input
        .function_name
        .clone()
        .ok_or_else(|| ApiError::invalid("functionName: required"))?;
    validate::function_name(&name).map_err(ApiError::invalid)?;
    let mut missing = Vec::new();
    if input.runtime.is_none() {
        missing.push("runtime");
    }
    if input.handler.is_none() {
        missing.push("handler");
    }
    if input.code.is_none() {
        missing.push("code");
    }
    if !missing.is_empty() {
        return Err(ApiError::invalid(format!(
            "missing required fields: {}",
            missing.join(", ")
        )));
    }
    if state.dispatcher.function(&name).is_some() {
        return Err(ApiError::conflict(
            "FunctionAlreadyExists",
            format!("function '{name}' already exists"),
        ));
    }
    let now = now_rfc3339();
    let base = FunctionConfig {
        function_id: ids::uuid_like(),
        function_name: name.clone(),
        // Required on create: replaced by the request's runtime in `merge`.
        runtime: fnbridge_event::Runtime::Python3_10,
        handler: String::new(),
        memory_size: 128,
        timeout: 3,
        instance_concurrency: 1,
        environment_variables: BTreeMap::new(),
        description: String::new(),
        cpu: None,
        disk_size: None,
        role: None,
        internet_access: None,
        disable_inject_credentials: None,
        initializer: None,
        pre_stop: None,
        custom_runtime_config: None,
        code_size: 0,
        code_checksum: String::new(),
        revision: String::new(),
        created_time: now.clone(),
        last_modified_time: now,
        fc_settings: BTreeMap::new(),
    };
    let (mut f, code) = merge(base, input).map_err(ApiError::invalid)?;
    apply_kept(&mut f, kept);
    let (revision, size, checksum) = deploy_code(&state, &f, code.expect("checked above")).await?;
    f.revision = revision;
    f.code_size = size;
    f.code_checksum = checksum;
    if let Err(e) = state.dispatcher.create_function(f.clone()).await {
        let _ = tokio::fs::remove_dir_all(state.dispatcher.code_dir(&name, &f.revision)).await;
        return Err(e.into());
    }
    let cfg = state.dispatcher.config();
    Ok(Json(with_interpreter(
        &state,
        &f,
        to_json(&f, &cfg.region, &cfg.account_id),
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct QualifierQuery {
    pub qualifier: Option<String>,
}

/// Checks that a qualifier names LATEST, an existing version or an existing alias, and
/// returns it normalized (`LATEST` when empty).
pub(crate) fn check_qualifier(
    state: &AppState,
    function: &str,
    q: Option<&str>,
) -> Result<String, ApiError> {
    let q = match q {
        None | Some("") => "LATEST",
        Some(q) => q,
    };
    if q == "LATEST" {
        return Ok(q.into());
    }
    if let Ok(v) = q.parse::<u64>() {
        return match state.dispatcher.version(function, v) {
            Some(_) => Ok(q.into()),
            None => Err(ApiError::not_found(
                "VersionNotFound",
                format!("version '{q}' of function '{function}' does not exist"),
            )),
        };
    }
    match state.dispatcher.alias(function, q) {
        Some(_) => Ok(q.into()),
        None => Err(ApiError::not_found(
            "AliasNotFound",
            format!("alias '{q}' of function '{function}' does not exist"),
        )),
    }
}

pub(crate) fn loaded(state: &AppState, name: &str) -> Result<FunctionConfig, ApiError> {
    state
        .dispatcher
        .function(name)
        .ok_or_else(|| ApiError::function_not_found(name))
}

/// The configuration a qualifier resolves to (an alias with weights: its main version), with
/// the qualifier checked.
fn config_at(
    state: &AppState,
    name: &str,
    qualifier: Option<&str>,
) -> Result<(String, FunctionConfig), ApiError> {
    loaded(state, name)?;
    let qualifier = check_qualifier(state, name, qualifier)?;
    let f = match qualifier.parse::<u64>() {
        Ok(v) => state.dispatcher.version(name, v),
        Err(_) if qualifier == "LATEST" => state.dispatcher.function(name),
        Err(_) => state
            .dispatcher
            .alias(name, &qualifier)
            .and_then(|a| state.dispatcher.version(name, a.version_id)),
    }
    .ok_or_else(|| ApiError::function_not_found(name))?;
    Ok((qualifier, f))
}

/// How long a code download URL from GetFunctionCode stays valid.
const CODE_URL_VALIDITY_S: i64 = 3600;

/// The zip of a deployed code directory, built the same way every time (see `code::zip_dir`).
async fn code_zip(state: &AppState, f: &FunctionConfig) -> Result<Vec<u8>, ApiError> {
    let dir = state.dispatcher.code_dir(&f.function_name, &f.revision);
    tokio::task::spawn_blocking(move || code::zip_dir(&dir))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// GetFunctionCode: `{"url","checksum"}`. The URL is presigned and expires, like FC's OSS URL;
/// it names the code revision, so it keeps downloading the code it was issued for.
pub(crate) async fn get_code(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, f) = config_at(&state, &name, q.qualifier.as_deref())?;
    let zip = code_zip(&state, &f).await?;
    // The address the caller reached us by; only characters a host:port may hold.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .unwrap_or("127.0.0.1");
    let expires = fnbridge_store::now_ms() / 1000 + CODE_URL_VALIDITY_S;
    let what = format!("code\n{name}\n{}\n{expires}", f.revision);
    let signature = state.dispatcher.auth().presign(&what);
    Ok(Json(json!({
        "url": format!(
            "http://{host}/code-downloads/{name}/{}.zip?expires={expires}&signature={signature}",
            f.revision
        ),
        "checksum": code::crc64(&zip).to_string(),
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DownloadQuery {
    expires: Option<i64>,
    signature: Option<String>,
}

/// The download a GetFunctionCode URL names; the signature and expiry are its credential.
pub(crate) async fn download_code(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
    Query(q): Query<DownloadQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let denied = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "the code download URL is not valid or has expired; call GetFunctionCode again",
        )
    };
    let (Some(expires), Some(signature)) = (q.expires, q.signature) else {
        return Err(denied());
    };
    let revision = file.strip_suffix(".zip").ok_or_else(denied)?;
    let what = format!("code\n{name}\n{revision}\n{expires}");
    if expires < fnbridge_store::now_ms() / 1000
        || !state.dispatcher.auth().check_presigned(&what, &signature)
    {
        return Err(denied());
    }
    // The revision may belong to LATEST or to any version; it must still be deployed.
    let f = state
        .dispatcher
        .has_revision(&name, revision)
        .ok_or_else(|| ApiError::function_not_found(&name))?;
    let zip = code_zip(&state, &f).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/zip")], zip).into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<Json<Value>, ApiError> {
    let (qualifier, f) = config_at(&state, &name, q.qualifier.as_deref())?;
    let cfg = state.dispatcher.config();
    let mut v = with_interpreter(&state, &f, to_json(&f, &cfg.region, &cfg.account_id));
    if qualifier != "LATEST" {
        v["qualifier"] = json!(qualifier);
    }
    Ok(Json(v))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (input, kept) = function_input(&body)?;
    if let Some(n) = &input.function_name
        && *n != name
    {
        return Err(ApiError::invalid(format!(
            "functionName: cannot be changed (path says '{name}', body '{n}')"
        )));
    }
    let old = loaded(&state, &name)?;
    let (mut f, code) = merge(old.clone(), input).map_err(ApiError::invalid)?;
    apply_kept(&mut f, kept);
    f.last_modified_time = now_rfc3339();
    let mut new_dir = None;
    match code {
        Some(code) => {
            let (revision, size, checksum) = deploy_code(&state, &f, code).await?;
            new_dir = Some(state.dispatcher.code_dir(&name, &revision));
            f.revision = revision;
            f.code_size = size;
            f.code_checksum = checksum;
        }
        None if f.handler != old.handler
            || f.initializer != old.initializer
            || f.pre_stop != old.pre_stop
            || f.custom_runtime_config != old.custom_runtime_config =>
        {
            let dir = state.dispatcher.code_dir(&name, &f.revision);
            check_handler(&state, &f, &dir).await?;
        }
        None => {}
    }
    let updated = match state.dispatcher.update_function(f.clone()).await {
        Ok(u) => u,
        Err(e) => {
            if let Some(d) = new_dir {
                let _ = tokio::fs::remove_dir_all(d).await;
            }
            return Err(e.into());
        }
    };
    if let Some(rev) = updated.unused_revision {
        let _ = tokio::fs::remove_dir_all(state.dispatcher.code_dir(&name, &rev)).await;
    }
    let cfg = state.dispatcher.config();
    Ok(Json(with_interpreter(
        &state,
        &f,
        to_json(&f, &cfg.region, &cfg.account_id),
    )))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.dispatcher.delete_function(&name).await?;
    let dir = state.dispatcher.config().code_root.join(&name);
    let _ = tokio::fs::remove_dir_all(dir).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    pub limit: Option<String>,
    pub next_token: Option<String>,
    pub prefix: Option<String>,
}

pub(crate) fn parse_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None | Some("") => Ok(20),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!(
                "limit: '{s}' must be an integer between 1 and 100"
            ))),
        },
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(q.limit.as_deref())?;
    let prefix = q.prefix.unwrap_or_default();
    let after = q.next_token.unwrap_or_default();
    let mut fs = state
        .dispatcher
        .store()
        .read(move |c| c.list_functions(&prefix, &after, limit + 1))
        .await?;
    let next = crate::body::page(&mut fs, limit, |f| f.function_name.clone());
    let cfg = state.dispatcher.config();
    let items: Vec<Value> = fs
        .iter()
        .map(|f| to_json(f, &cfg.region, &cfg.account_id))
        .collect();
    Ok(Json(json!({"functions": items, "nextToken": next})))
}
