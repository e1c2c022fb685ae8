import os
# Refusals with the protocol's error code, and nothing stored. argv: endpoint.
import sys, time, base64, hashlib, boto3, botocore, oss2, requests
from botocore.config import Config
ep = sys.argv[1]
def s3c(secret=os.environ["FNB_SK"]):
    return boto3.client("s3", endpoint_url=ep, aws_access_key_id=os.environ["FNB_AK"], aws_secret_access_key=secret,
                        region_name="cn-hangzhou", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3 = s3c()
def code(f):
    try:
        f()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise SystemExit("expected a refusal")
s3.create_bucket(Bucket="bad")
assert code(lambda: s3c("wrong").put_object(Bucket="bad", Key="k", Body=b"x")) == "SignatureDoesNotMatch"
for name in ["ab", "UPPER", "-dash", "under_score", "x" * 64]:
    assert code(lambda: s3.create_bucket(Bucket=name)) in ("InvalidBucketName",), name
assert code(lambda: s3.put_object(Bucket="bad", Key="k" * 1024, Body=b"x")) in ("KeyTooLongError",)
wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
assert code(lambda: s3.put_object(Bucket="bad", Key="md5", Body=b"x", ContentMD5=wrong_md5)) == "BadDigest"
assert code(lambda: s3.head_object(Bucket="bad", Key="md5")) == "404"
up = s3.create_multipart_upload(Bucket="bad", Key="mp")["UploadId"]
e1 = s3.upload_part(Bucket="bad", Key="mp", UploadId=up, PartNumber=1, Body=b"a" * (200 * 1024))["ETag"]
e2 = s3.upload_part(Bucket="bad", Key="mp", UploadId=up, PartNumber=2, Body=b"b")["ETag"]
assert code(lambda: s3.complete_multipart_upload(Bucket="bad", Key="mp", UploadId=up,
    MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})) == "InvalidPartOrder"
assert code(lambda: s3.complete_multipart_upload(Bucket="bad", Key="mp", UploadId=up,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}]})) == "InvalidPart"
assert code(lambda: s3.head_object(Bucket="bad", Key="mp")) == "404"
assert code(lambda: s3.delete_bucket(Bucket="bad")) == "BucketNotEmpty"
# OSS dialect.
b = oss2.Bucket(oss2.Auth(os.environ["FNB_AK"], "wrong"), ep, "bad")
try:
    b.put_object("k", b"x"); raise SystemExit("wrong secret accepted")
except oss2.exceptions.SignatureDoesNotMatch:
    pass
b = oss2.Bucket(oss2.Auth(os.environ["FNB_AK"], os.environ["FNB_SK"]), ep, "bad")
try:
    b.put_object("k", b"x", headers={"Content-MD5": wrong_md5}); raise SystemExit("bad md5 accepted")
except oss2.exceptions.InvalidDigest:
    pass
assert not b.object_exists("k")
url = b.sign_url("GET", "k", 1)
time.sleep(2)
r = requests.get(url)
assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content, r.content
print("ok")
