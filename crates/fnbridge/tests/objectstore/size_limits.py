# A request over the size limits is refused with the protocol's code and nothing is stored.
# The oversized bodies are announced, not sent: Content-Length 5 GiB + 1 and a few bytes, sent
# on a raw socket, so the refusal must come from the announced length (a store that read on
# would wait for the rest and time out). argv: endpoint.
import os, sys, socket, urllib.parse, boto3, botocore, oss2
from botocore.awsrequest import AWSRequest
from botocore.auth import S3SigV4Auth
from botocore.credentials import Credentials
from botocore.config import Config
ep = sys.argv[1]
ak, sk = os.environ["FNB_AK"], os.environ["FNB_SK"]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="cn-hangzhou", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.create_bucket(Bucket="limits")
TOO_BIG = (5 << 30) + 1

def raw(method, url, headers):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    head = f"{method} {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((u.hostname, u.port), timeout=10) as c:
        c.sendall(head.encode() + b"x" * 16)
        data = b""
        while b"</Error>" not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("utf-8", "replace")

# S3: a SigV4-signed PUT (UNSIGNED-PAYLOAD) announcing 5 GiB + 1.
url = f"{ep}/limits/huge"
req = AWSRequest(method="PUT", url=url, headers={"Content-Length": str(TOO_BIG), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
S3SigV4Auth(Credentials(ak, sk), "s3", "cn-hangzhou").add_auth(req)
resp = raw("PUT", url, dict(req.headers.items()))
assert resp.startswith("HTTP/1.1 400") and "<Code>EntityTooLarge</Code>" in resp, resp

# OSS: a V1-presigned PUT announcing 5 GiB + 1.
b = oss2.Bucket(oss2.Auth(ak, sk), ep, "limits")
signed = b.sign_url("PUT", "huge-oss", 60)
resp = raw("PUT", signed, {"Content-Length": str(TOO_BIG)})
assert " 400 " in resp.split("\r\n")[0] and "<Code>EntityTooLarge</Code>" in resp, resp

# User metadata over 8 KiB, with a body that would fit.
try:
    s3.put_object(Bucket="limits", Key="meta", Body=b"x", Metadata={"big": "v" * (9 << 10)})
    raise SystemExit("9 KiB of metadata accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "MetadataTooLarge", e.response
try:
    b.put_object("meta-oss", b"x", headers={"x-oss-meta-big": "v" * (9 << 10)})
    raise SystemExit("9 KiB of OSS metadata accepted")
except oss2.exceptions.OssError as e:
    assert e.code == "MetadataTooLarge", (e.code, e.message)

# Nothing stored, and the bucket can go: no object and no half-written upload left in it.
assert s3.list_objects_v2(Bucket="limits").get("KeyCount", 0) == 0
s3.delete_bucket(Bucket="limits")
print("ok")
