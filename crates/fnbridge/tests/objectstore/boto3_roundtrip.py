# boto3 with its defaults against fnbridge, unchanged apart from endpoint and keys. argv: endpoint.
import sys, boto3, botocore, os, time, urllib.request
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=os.environ["FNB_AK"], aws_secret_access_key=os.environ["FNB_SK"], region_name="cn-hangzhou", config=Config(s3={"addressing_style":"path"}))
s3.create_bucket(Bucket="bk1")
assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["bk1"]
s3.put_object(Bucket="bk1", Key="dir/a b+c.txt", Body=b"hello world", Metadata={"k":"v"})
r = s3.get_object(Bucket="bk1", Key="dir/a b+c.txt", Range="bytes=0-4")
assert (r["Body"].read(), r["ContentRange"], r["Metadata"]) == (b"hello", "bytes 0-4/11", {"k": "v"})
for i in range(5): s3.put_object(Bucket="bk1", Key=f"p/{i}/x", Body=b"x")
pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bk1", Delimiter="/", Prefix="p/", PaginationConfig={"PageSize": 2})
assert [[c["Prefix"] for c in p.get("CommonPrefixes", [])] for p in pages] == [["p/0/", "p/1/"], ["p/2/", "p/3/"], ["p/4/"]]
data = os.urandom(20*1024*1024)
big = os.path.join(sys.argv[2], "big.bin")
open(big, "wb").write(data)
s3.upload_file(big, "bk1", "big.bin")
assert s3.head_object(Bucket="bk1", Key="big.bin")["ETag"].endswith("-3\"")
assert s3.get_object(Bucket="bk1", Key="big.bin")["Body"].read() == data
s3.copy_object(Bucket="bk1", Key="copy.txt", CopySource={"Bucket":"bk1","Key":"dir/a b+c.txt"})
assert s3.get_object(Bucket="bk1", Key="copy.txt")["Body"].read() == b"hello world"
url = s3.generate_presigned_url("get_object", Params={"Bucket":"bk1","Key":"copy.txt"}, ExpiresIn=2)
assert urllib.request.urlopen(url).read() == b"hello world"
time.sleep(3)
try:
    urllib.request.urlopen(url); raise SystemExit("an expired presigned URL worked")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
s3.delete_object(Bucket="bk1", Key="copy.txt")
try:
    s3.delete_bucket(Bucket="bk1"); raise SystemExit("deleted a non-empty bucket")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "BucketNotEmpty"
print("ok")
