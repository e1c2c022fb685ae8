# A role's STS credentials (STS_AK, STS_SK, STS_TOKEN; the role allows oss:GetObject on pol-a/*
# and pola-1250000000/* only) through the S3 and COS fronts: reads of what the policy allows
# work, everything else is the protocol's AccessDenied (403) and changes nothing.
# argv: endpoint. The account's key (FNB_AK, FNB_SK) makes the buckets.
import os, sys
import boto3, oss2
from botocore.config import Config
from botocore.exceptions import ClientError
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

ep = sys.argv[1]
acct = oss2.Auth(os.environ["FNB_AK"], os.environ["FNB_SK"])
for name in ("pol-a", "pol-b", "pola-1250000000"):
    b = oss2.Bucket(acct, ep, name)
    b.create_bucket()
    b.put_object("k.txt", b"hello " + name.encode())

ak, sk, tok = os.environ["STS_AK"], os.environ["STS_SK"], os.environ["STS_TOKEN"]
assert ak.startswith("STS."), ak
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,
                  aws_session_token=tok, region_name="cn-hangzhou",
                  config=Config(s3={"addressing_style": "path"}))
assert s3.get_object(Bucket="pol-a", Key="k.txt")["Body"].read() == b"hello pol-a"
assert s3.head_object(Bucket="pol-a", Key="k.txt")["ContentLength"] == 11


def s3_denied(what, f):
    try:
        f()
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", (what, e.response)
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, (what, e.response)
        return
    raise AssertionError(what + ": not denied")


s3_denied("put", lambda: s3.put_object(Bucket="pol-a", Key="new.txt", Body=b"x"))
s3_denied("get other bucket", lambda: s3.get_object(Bucket="pol-b", Key="k.txt"))
s3_denied("list", lambda: s3.list_objects_v2(Bucket="pol-a"))
s3_denied("delete", lambda: s3.delete_object(Bucket="pol-a", Key="k.txt"))
s3_denied("multi-delete", lambda: s3.delete_objects(
    Bucket="pol-a", Delete={"Objects": [{"Key": "k.txt"}]}))
s3_denied("copy", lambda: s3.copy_object(Bucket="pol-b", Key="c.txt",
                                         CopySource={"Bucket": "pol-a", "Key": "k.txt"}))
s3_denied("multipart", lambda: s3.create_multipart_upload(Bucket="pol-a", Key="m.bin"))
s3_denied("create bucket", lambda: s3.create_bucket(Bucket="pol-c"))
s3_denied("list buckets", lambda: s3.list_buckets())
# A presigned GET carries the token in the query and is held to the same policy.
url = s3.generate_presigned_url("get_object", Params={"Bucket": "pol-b", "Key": "k.txt"})
import urllib.request, urllib.error
try:
    urllib.request.urlopen(url)
    raise AssertionError("presigned GET of pol-b not denied")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code

cos = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=ak, SecretKey=sk, Token=tok,
                            Scheme="http", Proxies={"http": ep}))
body = cos.get_object(Bucket="pola-1250000000", Key="k.txt")["Body"].get_raw_stream().read()
assert body == b"hello pola-1250000000", body
try:
    cos.put_object(Bucket="pola-1250000000", Key="n.txt", Body=b"x")
    raise AssertionError("COS put not denied")
except CosServiceError as e:
    assert e.get_error_code() == "AccessDenied" and e.get_status_code() == 403, (e.get_status_code(), e.get_digest_msg())

# Nothing the refused calls asked for happened.
for name in ("pol-a", "pol-b", "pola-1250000000"):
    keys = sorted(o.key for o in oss2.ObjectIterator(oss2.Bucket(acct, ep, name)))
    assert keys == ["k.txt"], (name, keys)
assert [b.name for b in oss2.Service(acct, ep).list_buckets().buckets].count("pol-c") == 0
print("ok")
