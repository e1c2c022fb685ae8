# Virtual-host style: the bucket in the Host header (`bucket.localhost:PORT` for boto3 with
# addressing_style virtual, `bucket.oss.test:PORT` for oss2, which uses path style for
# localhost and IP endpoints). Those names do not resolve on a plain machine, so this script maps
# every `*.localhost` and `*.oss.test` name to 127.0.0.1 in its own resolver (socket.getaddrinfo);
# the clients are unchanged and send the Host they would send to a real endpoint.
# argv: endpoint (http://127.0.0.1:PORT).
import os, sys, socket, urllib.parse, boto3, oss2, requests
from botocore.config import Config
port = urllib.parse.urlsplit(sys.argv[1]).port
real = socket.getaddrinfo
def resolve(host, *a, **k):
    if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost") or host.endswith("oss.test")):
        host = "127.0.0.1"
    return real(host, *a, **k)
socket.getaddrinfo = resolve
ak, sk = os.environ["FNB_AK"], os.environ["FNB_SK"]

s3 = boto3.client("s3", endpoint_url=f"http://localhost:{port}", aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="cn-hangzhou", config=Config(s3={"addressing_style": "virtual"}))
s3.create_bucket(Bucket="vhost")
s3.put_object(Bucket="vhost", Key="dir/a b.txt", Body=b"virtual")
assert s3.get_object(Bucket="vhost", Key="dir/a b.txt")["Body"].read() == b"virtual"
assert [o["Key"] for o in s3.list_objects_v2(Bucket="vhost", Prefix="dir/")["Contents"]] == ["dir/a b.txt"]
url = s3.generate_presigned_url("get_object", Params={"Bucket": "vhost", "Key": "dir/a b.txt"}, ExpiresIn=60)
assert urllib.parse.urlsplit(url).hostname == "vhost.localhost", url
assert requests.get(url).content == b"virtual"

b = oss2.Bucket(oss2.Auth(ak, sk), f"http://oss.test:{port}", "vhost")
assert b._make_url("vhost", "k").startswith(f"http://vhost.oss.test:{port}/"), b._make_url("vhost", "k")
b.put_object("dir/oss+ü.txt", b"from oss2")
assert b.get_object("dir/oss+ü.txt").read() == b"from oss2"
assert sorted(o.key for o in oss2.ObjectIterator(b, prefix="dir/")) == ["dir/a b.txt", "dir/oss+ü.txt"]
assert requests.get(b.sign_url("GET", "dir/oss+ü.txt", 60)).content == b"from oss2"
b.batch_delete_objects(["dir/a b.txt", "dir/oss+ü.txt"])
s3.delete_bucket(Bucket="vhost")
print("ok")
