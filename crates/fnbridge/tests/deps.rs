//! `requirements.txt` is installed into the function's code at deploy time; a failed install
//! keeps the previous deployment.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const HANDLER: &str = r#"
import os
import oss2
import requests

def handler(event, context):
    here = os.environ["FC_FUNC_CODE_PATH"]
    ok = requests.__file__.startswith(here) and oss2.__file__.startswith(here)
    return "requests %s oss2 %s from code dir: %s" % (requests.__version__, oss2.__version__, ok)
"#;

#[test]
fn requirements_are_installed_at_deploy_and_failures_keep_the_old_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy(
        "deps",
        &[
            ("index.py", HANDLER),
            ("requirements.txt", "requests\noss2\n"),
        ],
        json!({}),
    ));
    let out = s
        .req(Method::POST, "/2023-03-30/functions/deps/invocations")
        .body("{}")
        .send()
        .unwrap();
    assert!(out.headers().get("x-fc-error-type").is_none());
    let text = out.text().unwrap();
    assert!(
        text.starts_with("requests ") && text.ends_with("from code dir: True"),
        "{text}"
    );

    let r = s
        .req(Method::PUT, "/2023-03-30/functions/deps")
        .json(&json!({"code": {"zipFile": zip_b64(&[
            ("index.py", "def handler(e, c):\n    return 'new'\n"),
            ("requirements.txt", "fnbridge-no-such-package-4f1c9a==0.0.1\n"),
        ])}}))
        .send()
        .unwrap();
    expect_error(
        r,
        400,
        "InvalidArgument",
        "requirements.txt: pip install failed",
    );
    let again = s
        .req(Method::POST, "/2023-03-30/functions/deps/invocations")
        .body("{}")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(again, text, "the previous deployment still serves");
}
