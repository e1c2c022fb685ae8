# The one client of the object-store benchmark (crates/fnbridge/benches/objectstore.rs), the same
# for fnbridge, moto_server and s3s-fs: boto3, path style, one process per client.
# argv: mode endpoint ak sk bucket [...]
#   prep: create the bucket and the objects the GET rows read (obj-4096, obj-1048576).
#   load OP SIZE PROCS SECONDS: PROCS processes PUT (new keys) or GET (one object) of SIZE bytes
#     for SECONDS after a warm-up; prints ops, ops/s, MB/s, p50 and p99 in ms as JSON.
#   ack N: N sequential PUTs 50 ms apart; prints each key's acknowledgement time (time.time()).
#   presign KEY [METHOD]: a presigned GET (or put_object, with PUT) URL valid for an hour.
import sys, os, time, json, multiprocessing as mp
import boto3
from botocore.config import Config

mode, ep, ak, sk, bucket = sys.argv[1:6]
rest = sys.argv[6:]

def client():
    return boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1},
                                      max_pool_connections=1))

def worker(i, op, size, start, seconds, ready, q):
    c = client()
    body = os.urandom(size)
    key = f"obj-{size}"
    def one(n):
        if op == "PUT":
            c.put_object(Bucket=bucket, Key=f"w{i}/{size}/{n}", Body=body)
        else:
            c.get_object(Bucket=bucket, Key=key)["Body"].read()
    for n in range(5):  # warm-up: connection, credentials, first-call paths
        one(-n - 1)
    # The window opens once every process has warmed up (on a loaded machine, starting Python
    # and boto3 in 8 processes can take longer than any fixed delay).
    ready.put(i)
    while start.value == 0:
        time.sleep(0.001)
    start_at = start.value
    while time.time() < start_at:
        time.sleep(0.001)
    lat, n = [], 0
    end = start_at + seconds
    while True:
        t = time.perf_counter()
        one(n)
        lat.append(time.perf_counter() - t)
        n += 1
        if time.time() >= end:
            break
    q.put(lat)

if mode == "prep":
    c = client()
    c.create_bucket(Bucket=bucket)
    for size in (4096, 1 << 20):
        c.put_object(Bucket=bucket, Key=f"obj-{size}", Body=os.urandom(size))
    print("ok")
elif mode == "load":
    op, size, procs, seconds = rest[0], int(rest[1]), int(rest[2]), float(rest[3])
    q, ready = mp.Queue(), mp.Queue()
    start = mp.Value("d", 0.0)
    ps = [mp.Process(target=worker, args=(i, op, size, start, seconds, ready, q)) for i in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.get()
    start.value = time.time() + 0.1
    lat = []
    for _ in ps:
        lat += q.get()
    for p in ps:
        p.join()
    lat.sort()
    # Ops finished within the window per second of it (the last op of each client ends past it).
    elapsed = seconds + sum(lat) / len(lat)
    ops = len(lat)
    print(json.dumps({"ops": ops, "ops_s": ops / elapsed, "mb_s": ops * size / elapsed / 1e6,
                      "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1e3}))
elif mode == "ack":
    c = client()
    acks = {}
    for n in range(int(rest[0])):
        key = f"lat/{n}.bin"
        c.put_object(Bucket=bucket, Key=key, Body=b"x" * 1024)
        acks[key] = time.time()
        time.sleep(0.05)
    print(json.dumps(acks))
elif mode == "presign":
    op = "put_object" if rest[1:] == ["PUT"] else "get_object"
    print(client().generate_presigned_url(op, Params={"Bucket": bucket, "Key": rest[0]}, ExpiresIn=3600))
