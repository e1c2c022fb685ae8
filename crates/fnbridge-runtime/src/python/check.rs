//! Deploy-time check of a Python handler: the module file exists, it parses, and it binds the
//! handler name at top level. The check reads the source with `ast` instead of importing it, so
//! deploying never runs user code (import-time side effects, or code that needs the function's
//! environment variables, would otherwise run on the server at deploy time).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::config::host_base_env;

/// Import-time code gets this long; a module that blocks at import would hang every cold start.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The throwaway import runs user code, so it gets an address-space cap like an instance.
const CHECK_MEMORY_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

/// Runs in a throwaway interpreter: parses the module source and looks for a top-level binding
/// of the handler name. Dynamic bindings it cannot see through (`from x import *`, a module
/// `__getattr__`, writes to `globals()`) are accepted rather than guessed at.
const CHECK_SCRIPT: &str = r#"
import ast, os, sys
code_dir, module, attr, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except Exception:
    pass

def verdict(text):
    sys.stdout.write(text)
    sys.stdout.flush()
    os._exit(0)

rel = module.replace(".", "/")
path = os.path.join(code_dir, rel + ".py")
if not os.path.isfile(path):
    path = os.path.join(code_dir, rel, "__init__.py")
if not os.path.isfile(path):
    verdict("ok")  # a compiled module: nothing to read without importing it
try:
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
except SyntaxError as e:
    verdict("cannot import module %r: SyntaxError: %s (%s, line %s)" % (module, e.msg, os.path.relpath(path, code_dir), e.lineno))
except Exception as e:
    verdict("cannot read module %r: %s: %s" % (module, type(e).__name__, e))

def bound(nodes):
    found = None
    for n in nodes:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == attr:
            found = "callable"
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for a in n.names:
                if a.name == "*":
                    return "dynamic"
                if (a.asname or a.name.split(".")[0]) == attr:
                    found = "callable"
        elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if attr in names:
                found = "value" if isinstance(n.value, ast.Constant) else "callable"
        elif isinstance(n, (ast.If, ast.Try, ast.With)) or type(n).__name__ == "TryStar":
            inner = []
            for field in ("body", "orelse", "finalbody"):
                inner += getattr(n, field, [])
            for h in getattr(n, "handlers", []):
                inner += h.body
            r = bound(inner)
            if r == "dynamic":
                return r
            found = r or found
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "__getattr__":
            return "dynamic"
    return found

src = ast.dump(tree)
r = bound(tree.body)
if r is None and "globals" in src:
    r = "dynamic"
if r is None:
    verdict("module %r has no attribute %r" % (module, attr))
if r == "value":
    verdict("%r in module %r is not callable" % (attr, module))
verdict("ok")
"#;

/// Checks that `handler` (`module.function`) names a callable in `code_dir`. The error is a
/// message for the user, e.g. `module 'index' has no attribute 'handler'`.
pub async fn check_python_handler(
    python: &Path,
    code_dir: &Path,
    handler: &str,
) -> Result<(), String> {
    let (module, attr) = handler
        .rsplit_once('.')
        .filter(|(m, a)| !m.is_empty() && !a.is_empty())
        .ok_or_else(|| {
            format!("invalid handler {handler:?}: expected module.function, e.g. index.handler")
        })?;
    let module = module.replace('/', ".");
    find_module_file(code_dir, &module)?;

    let mut child = Command::new(python)
        .arg("-c")
        .arg(CHECK_SCRIPT)
        .arg(code_dir)
        .arg(&module)
        .arg(attr)
        .arg(CHECK_MEMORY_LIMIT.to_string())
        .env_clear()
        .envs(host_base_env())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(code_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let verdict = async {
        let mut text = String::new();
        // The script writes a single short line; anything longer is cut off.
        let _ = (&mut stdout)
            .take(16 * 1024)
            .read_to_string(&mut text)
            .await;
        let status = child.wait().await;
        (text, status)
    };
    let (text, status) = match tokio::time::timeout(CHECK_TIMEOUT, verdict).await {
        Ok(done) => done,
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: the child is not reaped yet, so its group id is still ours.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
            }
            return Err(format!(
                "importing module {module:?} did not finish within {} seconds",
                CHECK_TIMEOUT.as_secs()
            ));
        }
    };
    match text.as_str() {
        "ok" => Ok(()),
        "" => Err(format!(
            "importing module {module:?} ended the interpreter ({})",
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        )),
        message => Err(message.to_owned()),
    }
}

/// The module must be in the code itself: a plain module, a package, or a compiled module.
fn find_module_file(code_dir: &Path, module: &str) -> Result<(), String> {
    let rel = module.replace('.', "/");
    let base = code_dir.join(&rel);
    if base.with_extension("py").is_file() || base.join("__init__.py").is_file() {
        return Ok(());
    }
    let (dir, stem) = match rel.rsplit_once('/') {
        Some((dir, stem)) => (code_dir.join(dir), stem),
        None => (code_dir.to_path_buf(), rel.as_str()),
    };
    let compiled = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(stem)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|ext| ext == "pyc" || ext.ends_with("so"))
        });
    if compiled {
        Ok(())
    } else {
        Err(format!("module file {rel}.py not found in the code"))
    }
}
