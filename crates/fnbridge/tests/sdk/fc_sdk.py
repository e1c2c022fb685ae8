"""Drives fnbridge with the official FC 3.0 SDK (alibabacloud_fc20230330), unchanged apart from
its endpoint, keys and protocol: every operation fnbridge serves, each answer parsed by the SDK's
own models; then the refusals (wrong secret, stale date, replayed nonce) and role credentials.

Usage: fc_sdk.py ENDPOINT ACCESS_KEY_ID ACCESS_KEY_SECRET ACCOUNT_ID
Prints one "ok <operation>" line per operation; exits non-zero on the first failure.
"""

import base64
import hashlib
import io
import json
import sys
import time
import urllib.request
import zipfile

from alibabacloud_fc20230330 import models as fc
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

ENDPOINT, AK, SK, ACCOUNT = sys.argv[1:5]
HOST = ENDPOINT.split("://", 1)[1]


def client(ak=AK, sk=SK, token=None):
    return Client(Config(access_key_id=ak, access_key_secret=sk, security_token=token,
                         endpoint=HOST, protocol="http", region_id="cn-hangzhou"))


def ok(what):
    print("ok", what, flush=True)


def zip_b64(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return base64.b64encode(buf.getvalue()).decode()


def refused(code, call, status=403):
    try:
        call()
    except ClientException as e:
        assert e.code == code, f"expected {code}, got {e.code}: {e.message}"
        assert e.status_code == status, (code, e.status_code)
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


ECHO = """
import json
def handler(event, context):
    return json.dumps({"event": json.loads(event), "request_id": context.request_id})
"""

# A handler that calls the FC API with its role's credentials, signing by hand (stdlib only, so
# it runs on whatever interpreter and in whatever sandbox the function gets).
CALLER = r'''
import hashlib, hmac, json, os, time, uuid, urllib.request, urllib.error

def fc_get(path, creds):
    ep = os.environ["FNBRIDGE_API_ENDPOINT"]
    h = {"host": ep.split("://", 1)[1], "accept": "application/json",
         "x-acs-action": "GetFunction", "x-acs-version": "2023-03-30",
         "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "x-acs-signature-nonce": uuid.uuid4().hex,
         "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
         "x-acs-security-token": creds.security_token}
    names = sorted(h)
    canonical = "GET\n%s\n\n%s\n%s\n%s" % (path, "".join("%s:%s\n" % (k, h[k].strip()) for k in names),
                                           ";".join(names), h["x-acs-content-sha256"])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(creds.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    h["Authorization"] = "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s" % (
        creds.access_key_id, ";".join(names), sig)
    try:
        with urllib.request.urlopen(urllib.request.Request(ep + path, headers=h), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())

def handler(event, context):
    c = context.credentials
    out = {"ak": c.access_key_id, "sk": c.access_key_secret, "token": c.security_token,
           "env_ak": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
           "env_token": os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
           "endpoint": os.environ.get("FNBRIDGE_API_ENDPOINT", "")}
    if c.access_key_id:
        out["status"], out["answer"] = fc_get("/2023-03-30/functions/sdk-echo", c)
    return json.dumps(out)
'''


def main():
    c = client()
    rt = RuntimeOptions()

    # ---- functions ----
    create = fc.CreateFunctionInput(
        function_name="sdk-echo", runtime="python3.10", handler="index.handler",
        code=fc.InputCodeLocation(zip_file=zip_b64({"index.py": ECHO})),
        memory_size=128, timeout=10, description="from the sdk",
        environment_variables={"A": "1"},
        # FC fields fnbridge keeps and echoes without acting on them.
        log_config=fc.LogConfig(project="p", logstore="s"), tags=[])
    assert create.to_map().get("tags") == [], create.to_map().get("tags")
    r = c.create_function(fc.CreateFunctionRequest(body=create))
    assert r.body.function_name == "sdk-echo" and r.body.runtime == "python3.10", r.body
    assert r.body.log_config.project == "p", r.body.to_map()
    ok("CreateFunction")
    r = c.get_function("sdk-echo", fc.GetFunctionRequest())
    assert r.body.environment_variables == {"A": "1"} and r.body.code_checksum
    ok("GetFunction")
    r = c.list_functions(fc.ListFunctionsRequest(limit=10, prefix="sdk-"))
    assert [f.function_name for f in r.body.functions] == ["sdk-echo"], r.body.to_map()
    ok("ListFunctions")
    r = c.update_function("sdk-echo", fc.UpdateFunctionRequest(
        body=fc.UpdateFunctionInput(description="updated", timeout=20)))
    assert r.body.description == "updated" and r.body.timeout == 20
    ok("UpdateFunction")
    r = c.get_function_code("sdk-echo", fc.GetFunctionCodeRequest())
    assert r.body.url.startswith("http://") and r.body.checksum, r.body.to_map()
    data = urllib.request.urlopen(r.body.url, timeout=10).read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("index.py").decode() == ECHO
    # CRC-64/XZ of what the URL served, as the answer said.
    poly, crc = 0xC96C5795D7870F42, 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    assert str(crc ^ 0xFFFFFFFFFFFFFFFF) == r.body.checksum, (crc, r.body.checksum)
    ok("GetFunctionCode")

    # ---- versions and aliases ----
    r = c.publish_function_version("sdk-echo", fc.PublishFunctionVersionRequest(
        body=fc.PublishVersionInput(description="v1")))
    version = r.body.version_id
    assert version == "1", r.body.to_map()
    ok("PublishFunctionVersion")
    r = c.list_function_versions("sdk-echo", fc.ListFunctionVersionsRequest(limit=10))
    assert [v.version_id for v in r.body.versions] == ["1"], r.body.to_map()
    ok("ListFunctionVersions")
    r = c.create_alias("sdk-echo", fc.CreateAliasRequest(body=fc.CreateAliasInput(
        alias_name="prod", version_id=version, description="production")))
    assert r.body.alias_name == "prod" and r.body.version_id == "1"
    ok("CreateAlias")
    r = c.get_alias("sdk-echo", "prod")
    assert r.body.description == "production"
    ok("GetAlias")
    r = c.list_aliases("sdk-echo", fc.ListAliasesRequest(limit=10))
    assert [a.alias_name for a in r.body.aliases] == ["prod"]
    ok("ListAliases")
    r = c.update_alias("sdk-echo", "prod", fc.UpdateAliasRequest(
        body=fc.UpdateAliasInput(description="still production")))
    assert r.body.description == "still production"
    ok("UpdateAlias")

    # ---- triggers ----
    cfg = json.dumps({"eventName": "LogFileCreated", "eventVersion": "1.0.0",
                      "notes": "", "filter": {"domain": ["example.com"]}})
    r = c.create_trigger("sdk-echo", fc.CreateTriggerRequest(body=fc.CreateTriggerInput(
        trigger_name="logs", trigger_type="cdn_events", trigger_config=cfg,
        source_arn=f"acs:cdn:*:{ACCOUNT}", qualifier="prod", description="cdn logs")))
    assert r.body.trigger_name == "logs" and json.loads(r.body.trigger_config)["eventName"] == "LogFileCreated"
    ok("CreateTrigger")
    r = c.get_trigger("sdk-echo", "logs")
    assert r.body.qualifier == "prod", r.body.to_map()
    ok("GetTrigger")
    r = c.list_triggers("sdk-echo", fc.ListTriggersRequest(limit=10))
    assert [t.trigger_name for t in r.body.triggers] == ["logs"]
    ok("ListTriggers")
    r = c.update_trigger("sdk-echo", "logs", fc.UpdateTriggerRequest(
        body=fc.UpdateTriggerInput(description="renamed", qualifier="LATEST")))
    assert r.body.description == "renamed" and r.body.qualifier == "LATEST"
    ok("UpdateTrigger")

    # ---- invocations ----
    r = c.invoke_function_with_options(
        "sdk-echo", fc.InvokeFunctionRequest(body=io.BytesIO(b'{"hello":"sync"}'), qualifier="prod"),
        fc.InvokeFunctionHeaders(x_fc_log_type="Tail"), rt)
    out = json.loads(r.body.read())
    assert out["event"] == {"hello": "sync"}, out
    assert "FC Invoke End RequestId" in base64.b64decode(r.headers["x-fc-log-result"]).decode()
    ok("InvokeFunction Sync")

    # ---- async config, async invocation and tasks ----
    r = c.put_async_invoke_config("sdk-echo", fc.PutAsyncInvokeConfigRequest(
        body=fc.PutAsyncInvokeConfigInput(max_async_retry_attempts=1,
                                          max_async_event_age_in_seconds=3600, async_task=True)))
    assert r.body.max_async_retry_attempts == 1 and r.body.async_task is True, r.body.to_map()
    ok("PutAsyncInvokeConfig")
    r = c.get_async_invoke_config("sdk-echo", fc.GetAsyncInvokeConfigRequest())
    assert r.body.max_async_event_age_in_seconds == 3600
    ok("GetAsyncInvokeConfig")
    r = c.list_async_invoke_configs(fc.ListAsyncInvokeConfigsRequest(function_name="sdk-echo"))
    assert len(r.body.configs) == 1, r.body.to_map()
    ok("ListAsyncInvokeConfigs")
    r = c.invoke_function_with_options(
        "sdk-echo", fc.InvokeFunctionRequest(body=io.BytesIO(b'{"hello":"async"}')),
        fc.InvokeFunctionHeaders(x_fc_invocation_type="Async", x_fc_async_task_id="sdk_task_1"),
        rt)
    assert r.status_code in (200, 202), r.status_code
    ok("InvokeFunction Async")
    deadline = time.time() + 60
    while True:
        r = c.list_async_tasks("sdk-echo", fc.ListAsyncTasksRequest(include_payload=True, limit=10))
        tasks = r.body.tasks
        if tasks and tasks[0].status == "Succeeded":
            break
        assert time.time() < deadline, r.body.to_map()
        time.sleep(0.2)
    assert tasks[0].task_id == "sdk_task_1" and json.loads(tasks[0].task_payload) == {"hello": "async"}
    ok("ListAsyncTasks")
    r = c.get_async_task("sdk-echo", "sdk_task_1", fc.GetAsyncTaskRequest())
    assert r.body.status == "Succeeded" and json.loads(r.body.return_payload)["event"] == {"hello": "async"}
    assert r.body.events, r.body.to_map()
    ok("GetAsyncTask")
    c.delete_async_invoke_config("sdk-echo", fc.DeleteAsyncInvokeConfigRequest())
    refused("AsyncConfigNotExists",
            lambda: c.get_async_invoke_config("sdk-echo", fc.GetAsyncInvokeConfigRequest()), 404)
    ok("DeleteAsyncInvokeConfig")

    # ---- refusals ----
    refused("SignatureNotMatch", lambda: client(sk="not-the-secret").list_functions(fc.ListFunctionsRequest()))
    ok("wrong secret refused: SignatureNotMatch")
    real_ts, real_nonce = Utils.get_timestamp, Utils.get_nonce
    try:
        Utils.get_timestamp = staticmethod(lambda: time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * 60)))
        refused("RequestTimeTooSkewed", lambda: c.list_functions(fc.ListFunctionsRequest()))
        ok("stale date refused: RequestTimeTooSkewed")
    finally:
        Utils.get_timestamp = real_ts
    try:
        fixed = "replayed-" + hashlib.md5(str(time.time()).encode()).hexdigest()
        Utils.get_nonce = staticmethod(lambda: fixed)
        c.list_functions(fc.ListFunctionsRequest())
        refused("SignatureNonceUsed", lambda: c.list_functions(fc.ListFunctionsRequest()))
        ok("replayed nonce refused: SignatureNonceUsed")
    finally:
        Utils.get_nonce = real_nonce
    refused("InvalidAccessKeyID", lambda: client(ak="LTAInotakey").list_functions(fc.ListFunctionsRequest()))
    ok("unknown key refused: InvalidAccessKeyID")

    # ---- role credentials inside functions ----
    def deploy(name, role):
        c.create_function(fc.CreateFunctionRequest(body=fc.CreateFunctionInput(
            function_name=name, runtime="python3.10", handler="index.handler", role=role,
            code=fc.InputCodeLocation(zip_file=zip_b64({"index.py": CALLER})), timeout=30)))

    def call(name):
        r = c.invoke_function(name, fc.InvokeFunctionRequest(body=io.BytesIO(b"{}")))
        return json.loads(r.body.read())

    deploy("with-role", f"acs:ram::{ACCOUNT}:role/invoker")
    deploy("without-role", None)
    deploy("weak-role", f"acs:ram::{ACCOUNT}:role/nothing")
    out = call("with-role")
    assert out["ak"].startswith("STS.") and out["sk"] and out["token"], out
    assert out["env_ak"] == out["ak"] and out["env_token"] == out["token"], out
    assert out["endpoint"] == ENDPOINT, out
    assert out["status"] == 200 and out["answer"]["functionName"] == "sdk-echo", out
    ok("role credentials call the FC API from inside a function")
    out2 = call("without-role")
    assert out2["ak"] == "" and out2["sk"] == "" and out2["token"] == "" and out2["env_ak"] == "", out2
    assert "status" not in out2, out2
    ok("a function without a role has no credentials")
    out3 = call("weak-role")
    assert out3["ak"].startswith("STS."), out3
    assert out3["status"] == 403 and out3["answer"]["Code"] == "AccessDenied", out3
    ok("a role without permission gets 403 AccessDenied")
    # The same STS credentials through the SDK (x-acs-security-token): allowed and denied.
    sts = client(out["ak"], out["sk"], out["token"])
    assert sts.get_function("sdk-echo", fc.GetFunctionRequest()).body.function_name == "sdk-echo"
    refused("AccessDenied", lambda: sts.delete_function("sdk-echo"))
    ok("STS credentials through the SDK: GetFunction allowed, DeleteFunction denied")

    # ---- deletes ----
    c.delete_trigger("sdk-echo", "logs")
    ok("DeleteTrigger")
    c.delete_alias("sdk-echo", "prod")
    ok("DeleteAlias")
    c.delete_function_version("sdk-echo", version)
    ok("DeleteFunctionVersion")
    for name in ["with-role", "without-role", "weak-role", "sdk-echo"]:
        c.delete_function(name)
    refused("FunctionNotFound", lambda: c.get_function("sdk-echo", fc.GetFunctionRequest()), 404)
    ok("DeleteFunction")
    print("all ok", flush=True)


if __name__ == "__main__":
    main()
