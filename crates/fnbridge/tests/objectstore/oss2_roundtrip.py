import os
# oss2 against fnbridge, unchanged apart from endpoint and keys. argv: endpoint.
import sys, oss2, requests
ep = sys.argv[1]
auth = oss2.Auth(os.environ["FNB_AK"], os.environ["FNB_SK"])
b = oss2.Bucket(auth, ep, "ossbk")
b.create_bucket()
assert "ossbk" in [x.name for x in oss2.Service(auth, ep).list_buckets().buckets]
keys = ["logs/a b+c.gz", "中文/文件.txt", "plain"]
for k in keys:
    r = b.put_object(k, b"hello", headers={"x-oss-meta-who": "me"})
    assert r.etag == "5D41402ABC4B2A76B9719D911017C592", r.etag
    assert len(r.request_id) == 24
for k in keys:
    g = b.get_object(k)
    assert g.read() == b"hello" and g.headers["x-oss-meta-who"] == "me"
    assert g.headers["x-oss-hash-crc64ecma"] == "11177612005948864433"
assert b.get_object("logs/a b+c.gz", byte_range=(1, 3)).read() == b"ell"
assert [o.key for o in oss2.ObjectIterator(b, max_keys=1)] == ["logs/a b+c.gz", "plain", "中文/文件.txt"]
assert [o.key for o in oss2.ObjectIteratorV2(b, max_keys=1, delimiter="/")] == ["logs/", "plain", "中文/"]
r = b.append_object("app.log", 0, b"one ")
r = b.append_object("app.log", r.next_position, b"two")
assert b.get_object("app.log").read() == b"one two"
try:
    b.append_object("app.log", 1, b"x"); raise SystemExit("append at a wrong position worked")
except oss2.exceptions.PositionNotEqualToLength:
    pass
b.copy_object("ossbk", "logs/a b+c.gz", "copy/x y")
assert b.get_object("copy/x y").read() == b"hello"
assert requests.get(b.sign_url("GET", "logs/a b+c.gz", 60)).content == b"hello"
assert sorted(b.batch_delete_objects(["plain", "copy/x y"]).deleted_keys) == ["copy/x y", "plain"]
b.delete_object("app.log")
try:
    b.get_object("plain"); raise SystemExit("deleted object still there")
except oss2.exceptions.NoSuchKey:
    pass
key = "mp/big.bin"
data = bytes(range(256)) * 1200
up = b.init_multipart_upload(key).upload_id
p1 = b.upload_part(key, up, 1, data[:200 * 1024])
p2 = b.upload_part(key, up, 2, data[200 * 1024:])
b.complete_multipart_upload(key, up, [oss2.models.PartInfo(1, p1.etag), oss2.models.PartInfo(2, p2.etag)])
assert b.get_object(key).read() == data
# alibabacloud-oss-v2 (V4 signatures) on the same bucket.
import datetime, time, requests
import alibabacloud_oss_v2 as oss
cfg = oss.config.load_default()
cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(os.environ["FNB_AK"], os.environ["FNB_SK"])
cfg.region = "cn-hangzhou"
cfg.endpoint = ep
cfg.use_path_style = True
c = oss.Client(cfg)
# Keys with '/', spaces, '+', '%', non-ASCII.
keys = ["v2/a b+c.txt", "v2/ü/ñ.txt", "v2/日本/語 x.txt", "v2/pct%20lit.txt", "v2/sub/deep/k+1"]
for k in keys:
    c.put_object(oss.PutObjectRequest(bucket="ossbk", key=k, body=b"v2 data " + k.encode()))
    assert c.get_object(oss.GetObjectRequest(bucket="ossbk", key=k)).body.read() == b"v2 data " + k.encode(), k
    r = c.get_object(oss.GetObjectRequest(bucket="ossbk", key=k, range_header="bytes=3-6"))
    assert r.body.read() == b"data" and r.status_code == 206, (k, r.status_code)
    assert r.content_range == f"bytes 3-6/{8 + len(k.encode())}", r.content_range
res = c.list_objects_v2(oss.ListObjectsV2Request(bucket="ossbk", prefix="v2/"))
assert [o.key for o in res.contents] == sorted(keys, key=lambda k: k.encode()), [o.key for o in res.contents]
# Delimiter and pagination, one entry a page, through the SDK's paginator.
pages = list(c.list_objects_v2_paginator(limit=1).iter_page(
    oss.ListObjectsV2Request(bucket="ossbk", prefix="v2/", delimiter="/")))
got = [([o.key for o in p.contents or []], [cp.prefix for cp in p.common_prefixes or []]) for p in pages]
assert got == [(["v2/a b+c.txt"], []), (["v2/pct%20lit.txt"], []), ([], ["v2/sub/"]), ([], ["v2/ü/"]),
               ([], ["v2/日本/"])], got
# Multipart: two parts, the first at the minimum size.
data = os.urandom(100 * 1024 + 7)
up = c.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket="ossbk", key="v2/mp ü.bin"))
parts = []
for n, chunk in [(1, data[:100 * 1024]), (2, data[100 * 1024:])]:
    r = c.upload_part(oss.UploadPartRequest(bucket="ossbk", key="v2/mp ü.bin", upload_id=up.upload_id,
                                            part_number=n, body=chunk))
    parts.append(oss.UploadPart(part_number=n, etag=r.etag))
r = c.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
    bucket="ossbk", key="v2/mp ü.bin", upload_id=up.upload_id,
    complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
assert r.key == "v2/mp ü.bin", r.key
assert c.get_object(oss.GetObjectRequest(bucket="ossbk", key="v2/mp ü.bin")).body.read() == data
# Copy, across keys with the same odd characters.
c.copy_object(oss.CopyObjectRequest(bucket="ossbk", key="v2/copy 日本+.txt", source_bucket="ossbk",
                                    source_key="v2/日本/語 x.txt"))
assert c.get_object(oss.GetObjectRequest(bucket="ossbk", key="v2/copy 日本+.txt")).body.read() == \
    b"v2 data " + "v2/日本/語 x.txt".encode()
# A presigned GET works, then expires.
pre = c.presign(oss.GetObjectRequest(bucket="ossbk", key="v2/a b+c.txt"), expires=datetime.timedelta(seconds=2))
r = requests.get(pre.url)
assert r.status_code == 200 and r.content == b"v2 data v2/a b+c.txt", (r.status_code, r.text)
time.sleep(3)
r = requests.get(pre.url)
assert r.status_code == 403 and "AccessDenied" in r.text and "expired" in r.text.lower(), (r.status_code, r.text)
# Multi-delete (encoding-type=url) of the odd keys: each deleted, and named back as sent.
res = c.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(bucket="ossbk", objects=[
    oss.DeleteObject(key=k) for k in keys + ["v2/mp ü.bin", "v2/copy 日本+.txt"]]))
assert res.encoding_type == "url", res.encoding_type
assert sorted(d.key for d in res.deleted_objects) == sorted(keys + ["v2/mp ü.bin", "v2/copy 日本+.txt"]), \
    [d.key for d in res.deleted_objects]
assert c.list_objects_v2(oss.ListObjectsV2Request(bucket="ossbk", prefix="v2/")).contents in (None, [])
print("ok")
