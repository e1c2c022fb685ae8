//! Validation rules for names, runtimes, handlers, limits and environment variables
//! (fc-api.md §1 and §5). Each rule returns a message naming the field and what is wrong.

use std::collections::BTreeMap;

use fnbridge_event::Runtime;
use fnbridge_event::limits::MAX_ENV_BYTES;

/// `functionName` 1–64, `triggerName`/`aliasName` 1–128 characters of `[A-Za-z0-9_-]`, not
/// starting with a digit or `-`.
pub fn name(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    if value.chars().count() > max {
        // Cut on a character boundary: a byte index may fall inside a multi-byte character.
        let shown: String = value.chars().take(max).collect();
        return Err(format!(
            "{field}: '{shown}…' is longer than {max} characters"
        ));
    }
    let first = value.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' {
        return Err(format!(
            "{field}: '{value}' must not start with a digit or '-'"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "{field}: '{value}' contains '{c}'; only letters, digits, '_' and '-' are allowed"
        ));
    }
    Ok(())
}

pub fn function_name(v: &str) -> Result<(), String> {
    name("functionName", v, 64)
}

pub fn trigger_name(v: &str) -> Result<(), String> {
    name("triggerName", v, 128)
}

pub fn runtime(v: &str) -> Result<Runtime, String> {
    if let Some(r) = Runtime::parse(v) {
        return Ok(r);
    }
    let supported = Runtime::names().join(", ");
    let known_fc = [
        "nodejs12",
        "nodejs14",
        "nodejs16",
        "nodejs18",
        "nodejs20",
        "go1",
        "java8",
        "java11",
        "php7.2",
        "dotnetcore3.1",
        "custom-container",
    ];
    if known_fc.contains(&v) {
        return Err(format!(
            "runtime: '{v}' is a Function Compute runtime fnbridge does not run yet (supported: {supported})"
        ));
    }
    Err(format!(
        "runtime: unknown runtime '{v}' (supported: {supported})"
    ))
}

/// Python handlers are `module.function`, where module may be dotted (`pkg.mod.fn`).
pub fn python_handler(field: &str, v: &str) -> Result<(), String> {
    let Some((module, func)) = v.rsplit_once('.') else {
        return Err(format!(
            "{field}: '{v}' must be 'module.function', e.g. 'index.handler'"
        ));
    };
    let ident = |s: &str| {
        !s.is_empty()
            && !s.as_bytes()[0].is_ascii_digit()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !module.split('.').all(ident) || !ident(func) {
        return Err(format!(
            "{field}: '{v}' is not a valid Python 'module.function' name"
        ));
    }
    Ok(())
}

pub fn memory_size(v: u32) -> Result<(), String> {
    if !(128..=32768).contains(&v) || !v.is_multiple_of(64) {
        return Err(format!(
            "memorySize: {v} MB must be a multiple of 64 between 128 and 32768"
        ));
    }
    Ok(())
}

pub fn timeout(field: &str, v: u32, max: u32) -> Result<(), String> {
    if !(1..=max).contains(&v) {
        return Err(format!("{field}: {v} s must be between 1 and {max}"));
    }
    Ok(())
}

pub fn environment(env: &BTreeMap<String, String>) -> Result<(), String> {
    let mut total = 0;
    for (k, v) in env {
        let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "environmentVariables: key '{k}' must start with a letter and hold only letters, digits and '_'"
            ));
        }
        if k.starts_with("FC_") {
            return Err(format!(
                "environmentVariables: key '{k}' uses the reserved prefix 'FC_'"
            ));
        }
        total += k.len() + v.len();
    }
    if total > MAX_ENV_BYTES {
        return Err(format!(
            "environmentVariables: {total} bytes in total, more than the {MAX_ENV_BYTES}-byte limit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(function_name("cdn-log_1").is_ok());
        assert!(function_name("").unwrap_err().contains("must not be empty"));
        assert!(
            function_name("1abc")
                .unwrap_err()
                .contains("must not start")
        );
        assert!(
            function_name("-abc")
                .unwrap_err()
                .contains("must not start")
        );
        assert!(function_name("a/b").unwrap_err().contains("contains '/'"));
        assert!(
            function_name(&"a".repeat(65))
                .unwrap_err()
                .contains("longer than 64")
        );
        assert!(trigger_name(&"a".repeat(128)).is_ok());
        // Over the limit in characters, with a multi-byte character across the byte limit.
        let long = "é".repeat(70);
        assert!(function_name(&long).unwrap_err().contains("longer than 64"));
        let across = format!("{}éé", "a".repeat(63));
        assert!(
            function_name(&across)
                .unwrap_err()
                .contains("longer than 64")
        );
        // 64 characters but more than 64 bytes: not too long, but not allowed characters.
        assert!(
            function_name(&"é".repeat(64))
                .unwrap_err()
                .contains("contains 'é'")
        );
    }

    #[test]
    fn runtimes_and_handlers() {
        assert!(runtime("python3.10").is_ok());
        assert!(
            runtime("nodejs20")
                .unwrap_err()
                .contains("does not run yet")
        );
        assert!(runtime("custom.debian12").is_ok());
        let c = |v: serde_json::Value| fnbridge_event::CustomRuntimeConfig::parse(&v);
        assert!(
            c(serde_json::json!({"command": ["python3"], "args": ["server.py"], "port": 9000}))
                .is_ok()
        );
        assert!(
            c(serde_json::json!({"command": "python3"}))
                .unwrap_err()
                .contains("list")
        );
        assert!(
            c(serde_json::json!({"port": 70000}))
                .unwrap_err()
                .contains("port")
        );
        assert!(
            c(serde_json::json!({"healthCheckConfig": {"timeoutSeconds": 9}}))
                .unwrap_err()
                .contains("between 1 and 3")
        );
        assert!(
            c(serde_json::json!({"cmd": []}))
                .unwrap_err()
                .contains("unknown field 'cmd'")
        );
        assert!(runtime("cobol").unwrap_err().contains("unknown runtime"));
        assert!(python_handler("handler", "index.handler").is_ok());
        assert!(python_handler("handler", "pkg.mod.fn").is_ok());
        assert!(python_handler("handler", "index").is_err());
        assert!(python_handler("handler", "in-dex.handler").is_err());
        assert!(python_handler("handler", ".handler").is_err());
    }

    #[test]
    fn limits() {
        assert!(memory_size(128).is_ok());
        assert!(memory_size(100).is_err());
        assert!(memory_size(130).is_err());
        assert!(timeout("timeout", 0, 86400).is_err());
        assert!(timeout("timeout", 86400, 86400).is_ok());
        let mut env = BTreeMap::new();
        env.insert("FC_X".to_string(), "1".to_string());
        assert!(environment(&env).unwrap_err().contains("reserved prefix"));
        env.clear();
        env.insert("A".to_string(), "x".repeat(5000));
        assert!(environment(&env).unwrap_err().contains("4096-byte limit"));
        env.clear();
        env.insert("1A".to_string(), "x".into());
        assert!(environment(&env).is_err());
    }
}
