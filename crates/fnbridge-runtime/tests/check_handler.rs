//! `check_python_handler`: the deploy-time check, run by a real `python3` over the source.

mod common;

use std::path::Path;

use fnbridge_runtime::check_python_handler;

async fn check(files: &[(&str, &str)], handler: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        common::write(&dir.path().join(path), text);
    }
    check_python_handler(Path::new("python3"), dir.path(), handler).await
}

#[tokio::test]
async fn accepts_a_callable_handler() {
    check(
        &[("index.py", "def handler(event, context):\n    pass\n")],
        "index.handler",
    )
    .await
    .unwrap();
    check(
        &[
            ("pkg/__init__.py", ""),
            ("pkg/main.py", "import json\nhandler = lambda e, c: 1\n"),
        ],
        "pkg.main.handler",
    )
    .await
    .unwrap();
    // Import-time output must not confuse the verdict.
    check(
        &[(
            "index.py",
            "print('ok')\nprint('noise')\ndef handler(e, c): pass\n",
        )],
        "index.handler",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn reports_a_missing_module() {
    let err = check(&[("main.py", "def handler(e, c): pass\n")], "index.handler")
        .await
        .unwrap_err();
    assert_eq!(err, "module file index.py not found in the code");
}

#[tokio::test]
async fn reports_a_missing_attribute() {
    let err = check(&[("index.py", "def other(e, c): pass\n")], "index.handler")
        .await
        .unwrap_err();
    assert_eq!(err, "module 'index' has no attribute 'handler'");
}

#[tokio::test]
async fn reports_a_syntax_error() {
    let err = check(
        &[("index.py", "def handler(e, c)\n    pass\n")],
        "index.handler",
    )
    .await
    .unwrap_err();
    assert!(
        err.starts_with("cannot import module 'index': SyntaxError: "),
        "{err}"
    );
    assert!(err.contains("line 1"), "{err}");
}

#[tokio::test]
async fn never_runs_user_code_and_reports_non_callables() {
    // Import-time code (side effects, reads of the function's own environment) does not run
    // at deploy time: the check reads the source.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let src = format!(
        "import os\nopen({:?}, 'w').write('x')\nCONF = os.environ['ONLY_AT_RUNTIME']\ndef handler(e, c):\n    return CONF\n",
        marker.to_str().unwrap()
    );
    check(&[("index.py", &src)], "index.handler").await.unwrap();
    assert!(!marker.exists(), "the module was executed at deploy time");
    check(
        &[(
            "index.py",
            "import no_such_module_xyz\ndef handler(e, c): pass\n",
        )],
        "index.handler",
    )
    .await
    .unwrap();
    let err = check(&[("index.py", "handler = 42\n")], "index.handler")
        .await
        .unwrap_err();
    assert_eq!(err, "'handler' in module 'index' is not callable");
    // Names bound by import, assignment or inside if/try count; star imports are trusted.
    check(
        &[("index.py", "from os.path import join as handler\n")],
        "index.handler",
    )
    .await
    .unwrap();
    check(
        &[(
            "index.py",
            "try:\n    import x\nexcept ImportError:\n    def handler(e, c): pass\n",
        )],
        "index.handler",
    )
    .await
    .unwrap();
    check(&[("index.py", "from helpers import *\n")], "index.handler")
        .await
        .unwrap();
    let err = check(&[("index.py", "def handle(e, c): pass\n")], "index.handler")
        .await
        .unwrap_err();
    assert_eq!(err, "module 'index' has no attribute 'handler'");
}

#[tokio::test]
async fn rejects_malformed_handler_names() {
    for handler in ["index", ".handler", "index.", ""] {
        let err = check(&[("index.py", "")], handler).await.unwrap_err();
        assert!(err.starts_with("invalid handler"), "{handler}: {err}");
    }
}
