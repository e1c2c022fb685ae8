"""Drives fnbridge's CDN with the official CDN SDK (alibabacloud_cdn20180510), oss2 and requests,
unchanged apart from endpoints and keys: a bucket as origin, a domain added through the SDK,
MISS then HIT through the edge, Range, HEAD, refresh of a file and a directory, push, block,
stop/start, task queries, an RPC HMAC-SHA1 signed request, and the refusals with their codes.

Then waits for the offline log files: LogFileCreated makes the corrected seed 002 function copy
each into the DUMP bucket, where every request this script made is one 13-field line.
Finally DescribeCdnDomainLogs, an expired log URL, and DeleteCdnDomain.

Usage: cdn_sdk.py API OSS EDGE ACCESS_KEY_ID ACCESS_KEY_SECRET DOMAIN DUMP
Prints one "ok <step>" line per step; exits non-zero on the first failure.
"""

import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.parse
import uuid

import oss2
import requests
from alibabacloud_cdn20180510 import models as cdn
from alibabacloud_cdn20180510.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils

API, OSS, EDGE, AK, SK, DOMAIN, DUMP = sys.argv[1:8]
SENT = []  # every edge request to DOMAIN, as "METHOD path"
BUCKET = "cdnorigin"


def client(sk=SK):
    return Client(Config(access_key_id=AK, access_key_secret=sk,
                         endpoint=API.split("://", 1)[1], protocol="http", region_id="cn-hangzhou"))


c = client()


def ok(what):
    print("ok", what, flush=True)


def refused(code, f):
    try:
        f()
    except ClientException as e:
        assert e.code == code, f"expected {code}, got {e.code}: {e.message}"
        return
    raise AssertionError(f"expected {code}, got success")


def edge(path, host=DOMAIN, **kw):
    h = kw.pop("headers", {})
    h["Host"] = host
    if host == DOMAIN:
        SENT.append(f"GET http://{DOMAIN}{path}")
    return requests.get(EDGE + path, headers=h, timeout=30, **kw)


# The origin: a bucket of fnbridge's object store, filled with oss2.
bucket = oss2.Bucket(oss2.Auth(AK, SK), OSS, BUCKET)
bucket.create_bucket()
oss2.Bucket(oss2.Auth(AK, SK), OSS, DUMP).create_bucket()
A = bytes(range(256)) * 4
bucket.put_object("a.bin", A, headers={"Content-Type": "application/octet-stream"})
bucket.put_object("dir/b.txt", b"bee\n")
bucket.put_object("dir/c.txt", b"sea\n")
ok("origin bucket")

sources = json.dumps([{"content": f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com", "type": "oss",
                       "priority": "20", "port": 80, "weight": "10"}])
r = c.add_cdn_domain(cdn.AddCdnDomainRequest(domain_name=DOMAIN, cdn_type="web", sources=sources))
assert r.body.request_id
ok("AddCdnDomain")
refused("DomainAlreadyExist", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name=DOMAIN, cdn_type="web", sources=sources)))
refused("InvalidSources.Malformed", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name="x." + DOMAIN, cdn_type="web", sources="[{")))
refused("InvalidParameter", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name="y." + DOMAIN, cdn_type="ftp", sources=sources)))
refused("MissingParameter", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name="z." + DOMAIN, cdn_type="web")))
refused("InvalidSources.BucketNotFound", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name="w." + DOMAIN, cdn_type="web",
                            sources=json.dumps([{"content": "nosuchbucket", "type": "oss"}]))))
ok("AddCdnDomain refusals")

r = c.describe_user_domains(cdn.DescribeUserDomainsRequest())
names = [d.domain_name for d in r.body.domains.page_data]
assert names == [DOMAIN], names
assert r.body.domains.page_data[0].domain_status == "online"
assert r.body.domains.page_data[0].sources.source[0].type == "oss"
ok("DescribeUserDomains")
r = c.describe_cdn_domain_detail(cdn.DescribeCdnDomainDetailRequest(domain_name=DOMAIN))
assert r.body.get_domain_detail_model.domain_name == DOMAIN
assert r.body.get_domain_detail_model.source_models.source_model[0].content.startswith(BUCKET)
ok("DescribeCdnDomainDetail")
refused("InvalidDomain.NotFound", lambda: c.describe_cdn_domain_detail(
    cdn.DescribeCdnDomainDetailRequest(domain_name="nope.example.com")))

# The edge: MISS, then HIT with the same bytes; Range; HEAD; unknown host refused.
r = edge("/a.bin")
assert r.status_code == 200 and r.headers["X-Cache"] == "MISS" and r.content == A, r.headers
r = edge("/a.bin")
assert r.status_code == 200 and r.headers["X-Cache"] == "HIT" and r.content == A, r.headers
etag = r.headers["ETag"]
r = edge("/a.bin", headers={"Range": "bytes=10-19"})
assert r.status_code == 206 and r.content == A[10:20], (r.status_code, r.headers)
assert r.headers["Content-Range"] == f"bytes 10-19/{len(A)}"
r = edge("/a.bin", headers={"If-None-Match": etag})
assert r.status_code == 304, r.status_code
SENT.append(f"HEAD http://{DOMAIN}/a.bin")
r = requests.head(EDGE + "/a.bin", headers={"Host": DOMAIN}, timeout=30)
assert r.status_code == 200 and r.headers["Content-Length"] == str(len(A)), r.headers
assert edge("/missing").status_code == 404
assert edge("/a.bin", host="unknown.example.com").status_code == 403
ok("edge MISS HIT Range HEAD")

# Refresh a file: the next request goes to the origin (which now has new bytes).
bucket.put_object("a.bin", b"new bytes")
assert edge("/a.bin").content == A  # still cached
r = c.refresh_object_caches(cdn.RefreshObjectCachesRequest(object_path=f"{DOMAIN}/a.bin", object_type="File"))
file_task = r.body.refresh_task_id
assert file_task.isdigit(), file_task
r = edge("/a.bin")
assert r.headers["X-Cache"] == "MISS" and r.content == b"new bytes", (r.headers, r.content)
ok("RefreshObjectCaches File")
for p in ("/dir/b.txt", "/dir/c.txt"):
    edge(p)
    assert edge(p).headers["X-Cache"] == "HIT"
r = c.refresh_object_caches(cdn.RefreshObjectCachesRequest(
    object_path=f"http://{DOMAIN}/dir/", object_type="Directory", force=True))
dir_task = r.body.refresh_task_id
assert edge("/dir/b.txt").headers["X-Cache"] == "MISS"
assert edge("/dir/c.txt").headers["X-Cache"] == "MISS"
ok("RefreshObjectCaches Directory")
refused("Quota.Exceeded", lambda: c.refresh_object_caches(cdn.RefreshObjectCachesRequest(
    object_path="\n".join(f"{DOMAIN}/f{i}" for i in range(1001)))))
refused("InvalidParameter", lambda: c.refresh_object_caches(cdn.RefreshObjectCachesRequest(
    object_path=f"{DOMAIN}/dir", object_type="Directory")))
refused("InvalidDomain.NotFound", lambda: c.refresh_object_caches(cdn.RefreshObjectCachesRequest(
    object_path="nope.example.com/a")))
ok("RefreshObjectCaches refusals")

# Push: fetched ahead, so the first request is a HIT.
bucket.put_object("dir/pushed.txt", b"pushed\n")
r = c.push_object_cache(cdn.PushObjectCacheRequest(object_path=f"{DOMAIN}/dir/pushed.txt"))
push_task = r.body.push_task_id
r = edge("/dir/pushed.txt")
assert r.headers["X-Cache"] == "HIT" and r.content == b"pushed\n", r.headers
ok("PushObjectCache")

# Tasks.
r = c.describe_refresh_task_by_id(cdn.DescribeRefreshTaskByIdRequest(task_id=file_task))
assert r.body.total_count == 1 and r.body.tasks[0].status == "Complete", r.body
assert r.body.tasks[0].object_path == f"http://{DOMAIN}/a.bin"
assert r.body.tasks[0].object_type == "file"
r = c.describe_refresh_tasks(cdn.DescribeRefreshTasksRequest(domain_name=DOMAIN, object_type="directory"))
assert [t.task_id for t in r.body.tasks.cdntask] == [dir_task], r.body
r = c.describe_refresh_tasks(cdn.DescribeRefreshTasksRequest(task_id=push_task))
assert r.body.tasks.cdntask[0].object_type == "preload"
ok("DescribeRefreshTasks DescribeRefreshTaskById")

# Block (fnbridge's action in the same RPC style, signed by the SDK's generic call).
from alibabacloud_tea_openapi import utils_models as open_api_util_models  # noqa: E402


def call(action, query):
    req = open_api_util_models.OpenApiRequest(query=query)
    params = open_api_util_models.Params(action=action, version="2018-05-10", protocol="HTTP",
                                         pathname="/", method="POST", auth_type="AK", style="RPC",
                                         req_body_type="formData", body_type="json")
    from darabonba.runtime import RuntimeOptions
    return c.call_api(params, req, RuntimeOptions())


r = call("BlockObjectCaches", {"ObjectPath": f"{DOMAIN}/a.bin"})
assert r["body"]["BlockTaskId"].isdigit(), r
assert edge("/a.bin").status_code == 403
assert edge("/dir/b.txt").status_code == 200
call("BlockObjectCaches", {"ObjectPath": f"{DOMAIN}/a.bin", "Unblock": "true"})
assert edge("/a.bin").status_code == 200
ok("BlockObjectCaches")
try:
    call("NoSuchAction", {})
    raise AssertionError("unknown action accepted")
except ClientException as e:
    assert e.code == "InvalidAction.NotFound", e.code
ok("unknown action refused")

# Stop, refused at the edge; start again.
c.stop_cdn_domain(cdn.StopCdnDomainRequest(domain_name=DOMAIN))
assert edge("/a.bin").status_code == 403
r = c.describe_cdn_domain_detail(cdn.DescribeCdnDomainDetailRequest(domain_name=DOMAIN))
assert r.body.get_domain_detail_model.domain_status == "offline"
c.start_cdn_domain(cdn.StartCdnDomainRequest(domain_name=DOMAIN))
assert edge("/a.bin").status_code == 200
ok("StopCdnDomain StartCdnDomain")

# A wrong secret is refused.
refused("SignatureDoesNotMatch", lambda: client(sk="wrong" + SK).describe_user_domains(
    cdn.DescribeUserDomainsRequest()))
ok("bad signature refused")

# The older RPC style: every parameter in the query, HMAC-SHA1 signed with the SDK's signer.
q = {"Action": "DescribeUserDomains", "Version": "2018-05-10", "Format": "JSON", "AccessKeyId": AK,
     "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": str(uuid.uuid4()),
     "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
q["Signature"] = Utils.get_rpcsignature(q, "GET", SK)
r = requests.get(API + "/?" + urllib.parse.urlencode(q), timeout=30)
assert r.status_code == 200, r.text
assert r.json()["Domains"]["PageData"][0]["DomainName"] == DOMAIN
q["Signature"] = Utils.get_rpcsignature(q, "GET", "wrong")
q["SignatureNonce"] = str(uuid.uuid4())
r = requests.get(API + "/?" + urllib.parse.urlencode(q), timeout=30)
assert r.status_code == 400 and r.json()["Code"] == "SignatureDoesNotMatch", r.text
ok("RPC HMAC-SHA1")

# Offline logs: the function dumps each file into DUMP; wait until every request is there.
import gzip  # noqa: E402
import re  # noqa: E402

LINE = re.compile(r'^\[\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0800\] (\S+) (\S+) (\d+) "([^"]*)" '
                  r'"(\S+ \S+)" (\d{3}) (\d+) (\d+) (HIT|MISS) "([^"]*)" "([^"]*)" (\S+)$')
dump = oss2.Bucket(oss2.Auth(AK, SK), OSS, DUMP)
deadline = time.time() + 120
while True:
    lines = []
    keys = [o.key for o in oss2.ObjectIterator(dump, prefix=DOMAIN + "/")]
    for k in keys:
        lines += gzip.decompress(dump.get_object(k).read()).decode().splitlines()
    if len(lines) >= len(SENT) or time.time() > deadline:
        break
    time.sleep(0.5)
assert len(lines) == len(SENT), (len(lines), len(SENT), keys)
requests_logged = []
for line in lines:
    m = LINE.match(line)
    assert m, line
    requests_logged.append(m.group(5))
assert sorted(requests_logged) == sorted(SENT), (requests_logged, SENT)
assert all(re.match(re.escape(DOMAIN) + r"_\d{4}_\d{2}_\d{2}_\d{6}_\d{6}\.gz$", k.split("/")[-1]) for k in keys), keys
ok(f"offline logs: {len(lines)} lines in {len(keys)} files dumped by the function")

r = c.describe_cdn_domain_logs(cdn.DescribeCdnDomainLogsRequest(domain_name=DOMAIN))
d = r.body.domain_log_details.domain_log_detail[0]
assert d.domain_name == DOMAIN and d.log_count == len(keys), (d.log_count, keys)
info = d.log_infos.log_info_detail[0]
assert not info.log_path.startswith("http"), info.log_path
got = requests.get("http://" + info.log_path, timeout=30)
assert got.status_code == 200 and len(got.content) == info.log_size, (got.status_code, got.text)
assert info.start_time.endswith("Z") and info.end_time > info.start_time
expired = re.sub(r"Expires=\d+", "Expires=1000000000", "http://" + info.log_path)
assert requests.get(expired, timeout=30).status_code == 403
ok("DescribeCdnDomainLogs, presigned LogPath, expired URL refused")

c.delete_cdn_domain(cdn.DeleteCdnDomainRequest(domain_name=DOMAIN))
refused("InvalidDomain.NotFound", lambda: c.delete_cdn_domain(cdn.DeleteCdnDomainRequest(domain_name=DOMAIN)))
assert requests.get(EDGE + "/a.bin", headers={"Host": DOMAIN}, timeout=30).status_code == 403
ok("DeleteCdnDomain")
