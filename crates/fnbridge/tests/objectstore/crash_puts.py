# One of the concurrent clients of the kill -9 test, and its checker. argv: endpoint, mode, ...
#   put DIR ID: PUT objects c{ID}/{n}.bin until the server goes away; after each acknowledged PUT,
#     appends the key to DIR/acked-{ID} (flushed, so the list survives this process's end too).
#   verify DIR: after the restart, GETs every acknowledged key and compares its bytes; prints the
#     bucket's keys as JSON for the test to hold the events against.
import os, sys, json, glob, hashlib, boto3
from botocore.config import Config
ep, mode = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=os.environ["FNB_AK"],
                  aws_secret_access_key=os.environ["FNB_SK"], region_name="cn-hangzhou",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                connect_timeout=5, read_timeout=30))
BUCKET = "crash"

def body(key):
    # Sizes 1 B .. ~300 KiB, bytes derived from the key: the checker needs no copy of them.
    h = hashlib.sha256(key.encode()).digest()
    n = 1 + int.from_bytes(h[:4], "big") % (300 * 1024)
    return (h * (n // len(h) + 1))[:n]

if mode == "create":
    s3.create_bucket(Bucket=BUCKET)
    print("ok")
elif mode == "put":
    out, cid = sys.argv[3], sys.argv[4]
    with open(os.path.join(out, "acked-" + cid), "a") as f:
        open(os.path.join(out, "started-" + cid), "w").close()
        for n in range(100000):
            key = f"c{cid}/{n}.bin"
            try:
                s3.put_object(Bucket=BUCKET, Key=key, Body=body(key))
            except Exception as e:
                print(f"client {cid} stopped after {n} puts: {type(e).__name__}", file=sys.stderr)
                break
            f.write(key + "\n")
            f.flush()
    print("ok")
elif mode == "verify":
    out = sys.argv[3]
    acked = []
    for p in glob.glob(os.path.join(out, "acked-*")):
        acked += [l for l in open(p).read().split("\n") if l]
    for key in acked:
        got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert got == body(key), f"{key}: {len(got)} bytes differ from the acknowledged upload"
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys += [o["Key"] for o in page.get("Contents", [])]
        for o in page.get("Contents", []):
            assert o["Size"] == len(body(o["Key"])), o
    print(json.dumps({"acked": acked, "stored": keys}))
    print("ok")
