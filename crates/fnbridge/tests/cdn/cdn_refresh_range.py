"""Drives fnbridge's CDN with the official CDN SDK (alibabacloud_cdn20180510), oss2 and requests,
unchanged apart from endpoints and keys, on what cdn_sdk.py does not cover:

- RefreshObjectCaches `Force` (cdn.md §3): a Directory/IgnoreParams/Regex refresh without Force
  expires, so an unchanged object is revalidated and kept (HIT) while a changed one is refetched
  (MISS); with Force everything in range is purged; a File is purged whatever Force says.
- Range, If-None-Match and HEAD on an object larger than the edge caches (streamed from the
  bucket origin, never cached).
- AddCdnDomain's hourly call quota (`Throttling`), with the server's limit set low.

Usage: cdn_refresh_range.py API OSS EDGE ACCESS_KEY_ID ACCESS_KEY_SECRET DOMAIN ADD_LIMIT
Prints one "ok <step>" line per step; exits non-zero on the first failure.
"""

import json
import os
import sys

import oss2
import requests
from alibabacloud_cdn20180510 import models as cdn
from alibabacloud_cdn20180510.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

API, OSS, EDGE, AK, SK, DOMAIN, ADD_LIMIT = sys.argv[1:8]
BUCKET = "rangeorigin"

c = Client(Config(access_key_id=AK, access_key_secret=SK, endpoint=API.split("://", 1)[1],
                  protocol="http", region_id="cn-hangzhou"))


def ok(what):
    print("ok", what, flush=True)


def refused(code, f):
    try:
        f()
    except ClientException as e:
        assert e.code == code, f"expected {code}, got {e.code}: {e.message}"
        return e
    raise AssertionError(f"expected {code}, got success")


def edge(path, method="GET", **headers):
    headers["Host"] = DOMAIN
    return requests.request(method, EDGE + path, headers=headers, timeout=30)


def refresh(path, object_type, force=None):
    req = cdn.RefreshObjectCachesRequest(object_path=f"{DOMAIN}{path}", object_type=object_type)
    if force is not None:
        req.force = force
    assert c.refresh_object_caches(req).body.refresh_task_id.isdigit()


bucket = oss2.Bucket(oss2.Auth(AK, SK), OSS, BUCKET)
bucket.create_bucket()
for k in ("dir/same.txt", "dir/changed.txt", "file.txt", "q.txt"):
    bucket.put_object(k, f"v1 {k}".encode())
BIG = os.urandom(300 * 1024)
bucket.put_object("big.bin", BIG)
sources = json.dumps([{"content": f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com", "type": "oss",
                       "priority": "20", "port": 80, "weight": "10"}])
c.add_cdn_domain(cdn.AddCdnDomainRequest(domain_name=DOMAIN, cdn_type="web", sources=sources))
ok("origin and domain")


def cached(path, body):
    """Fetches `path` until cached; returns nothing, asserts the cached body."""
    edge(path)
    r = edge(path)
    assert r.headers["X-Cache"] == "HIT" and r.content == body, (path, r.headers, r.content)


# Directory without Force: expire. The unchanged object is revalidated and kept; the changed one
# is refetched. Without the refresh both would still be served from the cache.
cached("/dir/same.txt", b"v1 dir/same.txt")
cached("/dir/changed.txt", b"v1 dir/changed.txt")
bucket.put_object("dir/changed.txt", b"v2 dir/changed.txt")
assert edge("/dir/changed.txt").content == b"v1 dir/changed.txt"  # still cached
refresh("/dir/", "Directory")
r = edge("/dir/same.txt")
assert r.headers["X-Cache"] == "HIT" and r.content == b"v1 dir/same.txt", r.headers
r = edge("/dir/changed.txt")
assert r.headers["X-Cache"] == "MISS" and r.content == b"v2 dir/changed.txt", (r.headers, r.content)
assert edge("/dir/changed.txt").headers["X-Cache"] == "HIT"
ok("RefreshObjectCaches Directory Force=false expires")

# Directory with Force: purge, even what did not change.
refresh("/dir/", "Directory", force=True)
r = edge("/dir/same.txt")
assert r.headers["X-Cache"] == "MISS" and r.content == b"v1 dir/same.txt", r.headers
ok("RefreshObjectCaches Directory Force=true purges")

# IgnoreParams without Force: every query string of the path expires; unchanged ones are kept.
cached("/q.txt?a=1", b"v1 q.txt")
cached("/q.txt?a=2", b"v1 q.txt")
refresh("/q.txt", "IgnoreParams", force=False)
assert edge("/q.txt?a=1").headers["X-Cache"] == "HIT"
bucket.put_object("q.txt", b"v2 q.txt")
refresh("/q.txt", "IgnoreParams", force=False)
r = edge("/q.txt?a=2")
assert r.headers["X-Cache"] == "MISS" and r.content == b"v2 q.txt", r.headers
refresh("/q.txt", "IgnoreParams", force=True)
assert edge("/q.txt?a=2").headers["X-Cache"] == "MISS"
ok("RefreshObjectCaches IgnoreParams Force")

# Regex without Force expires what the expression matches, and only that.
cached("/dir/same.txt", b"v1 dir/same.txt")
cached("/file.txt", b"v1 file.txt")
bucket.put_object("dir/same.txt", b"v2 dir/same.txt")
bucket.put_object("file.txt", b"v2 file.txt")
refresh("/dir/s.*", "Regex", force=False)
r = edge("/dir/same.txt")
assert r.headers["X-Cache"] == "MISS" and r.content == b"v2 dir/same.txt", r.headers
assert edge("/file.txt").content == b"v1 file.txt"  # not in range: still cached
ok("RefreshObjectCaches Regex Force=false")

# File ignores Force: always purged (refetched even when unchanged).
cached("/file.txt", b"v1 file.txt")
refresh("/file.txt", "File", force=False)
r = edge("/file.txt")
assert r.headers["X-Cache"] == "MISS" and r.content == b"v2 file.txt", r.headers
ok("RefreshObjectCaches File ignores Force")

# An object larger than the edge caches: streamed, with Range, If-None-Match and HEAD.
r = edge("/big.bin")
assert r.status_code == 200 and r.content == BIG and r.headers["X-Cache"] == "MISS", r.headers
assert r.headers["Accept-Ranges"] == "bytes"
etag = r.headers["ETag"]
assert edge("/big.bin").headers["X-Cache"] == "MISS"  # never cached
n = len(BIG)
for spec, lo, hi in (("bytes=1000-1999", 1000, 1999), ("bytes=-10", n - 10, n - 1),
                     (f"bytes={n - 5}-", n - 5, n - 1), ("bytes=0-0", 0, 0),
                     (f"bytes=200000-{10 * n}", 200000, n - 1)):
    r = edge("/big.bin", Range=spec)
    assert r.status_code == 206, (spec, r.status_code)
    assert r.content == BIG[lo:hi + 1], spec
    assert r.headers["Content-Range"] == f"bytes {lo}-{hi}/{n}", (spec, r.headers)
    assert r.headers["Content-Length"] == str(hi - lo + 1), (spec, r.headers)
r = edge("/big.bin", Range=f"bytes={n}-")
assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{n}", r.headers
r = edge("/big.bin", **{"If-None-Match": etag})
assert r.status_code == 304 and r.content == b"", r.status_code
r = edge("/big.bin", method="HEAD", Range="bytes=10-19")
assert r.status_code == 206 and r.headers["Content-Length"] == "10", r.headers
ok("large object Range If-None-Match HEAD")

# AddCdnDomain's hourly quota: the domain added above was call 1; every call counts, refused
# ones too (the limit is on calls, as Alibaba's 100 calls/hour).
limit = int(ADD_LIMIT)
for i in range(limit - 2):
    c.add_cdn_domain(cdn.AddCdnDomainRequest(domain_name=f"q{i}.{DOMAIN}", cdn_type="web",
                                             sources=sources))
refused("DomainAlreadyExist", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name=DOMAIN, cdn_type="web", sources=sources)))
e = refused("Throttling", lambda: c.add_cdn_domain(
    cdn.AddCdnDomainRequest(domain_name=f"over.{DOMAIN}", cdn_type="web", sources=sources)))
assert "AddCdnDomain" in e.message and str(limit) in e.message, e.message
names = [d.domain_name for d in c.describe_user_domains(
    cdn.DescribeUserDomainsRequest()).body.domains.page_data]
assert f"over.{DOMAIN}" not in names and len(names) == limit - 1, names
ok("AddCdnDomain Throttling")
