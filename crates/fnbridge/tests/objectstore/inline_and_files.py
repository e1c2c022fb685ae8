# Objects on both sides of the inline bound (64 KiB: stored in the database) and in files, with
# boto3: GET, ranges, overwrite one kind with the other, copy, upload-part-copy and listing.
# argv: endpoint, step ("put" then, after the test looked at the data dir, "rest").
import os, sys, boto3
from botocore.config import Config
ep, step = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=os.environ["FNB_AK"],
                  aws_secret_access_key=os.environ["FNB_SK"], region_name="cn-hangzhou",
                  config=Config(s3={"addressing_style": "path"}))
B = "inl"
def data(n, seed):
    return bytes((i * 31 + seed) % 251 for i in range(n))
small, edge, large = data(4096, 1), data(64 * 1024, 2), data(64 * 1024 + 1, 3)

if step == "put":
    s3.create_bucket(Bucket=B)
    s3.put_object(Bucket=B, Key="small", Body=small)
    s3.put_object(Bucket=B, Key="edge", Body=edge)
    s3.put_object(Bucket=B, Key="empty", Body=b"")
    s3.put_object(Bucket=B, Key="large", Body=large)
    print("ok")
    sys.exit(0)

for key, body in [("small", small), ("edge", edge), ("large", large), ("empty", b"")]:
    r = s3.get_object(Bucket=B, Key=key)
    assert r["Body"].read() == body, key
    assert r["ContentLength"] == len(body), key
    if body:
        r = s3.get_object(Bucket=B, Key=key, Range="bytes=100-199" if len(body) > 200 else "bytes=1-2")
        want = body[100:200] if len(body) > 200 else body[1:3]
        assert r["Body"].read() == want, key
        r = s3.get_object(Bucket=B, Key=key, Range="bytes=-10")
        assert r["Body"].read() == body[-10:], key
# Copy of an inline object, and of a file object.
s3.copy_object(Bucket=B, Key="small-copy", CopySource={"Bucket": B, "Key": "small"})
assert s3.get_object(Bucket=B, Key="small-copy")["Body"].read() == small
s3.copy_object(Bucket=B, Key="large-copy", CopySource={"Bucket": B, "Key": "large"})
assert s3.get_object(Bucket=B, Key="large-copy")["Body"].read() == large
# A multipart upload whose first part is copied from an inline object's range and whose last
# part is small.
up = s3.create_multipart_upload(Bucket=B, Key="mp")["UploadId"]
p1 = s3.upload_part(Bucket=B, Key="mp", UploadId=up, PartNumber=1, Body=large * 2)["ETag"]
p2 = s3.upload_part_copy(Bucket=B, Key="mp", UploadId=up, PartNumber=2,
                         CopySource={"Bucket": B, "Key": "edge"},
                         CopySourceRange="bytes=0-999")["CopyPartResult"]["ETag"]
s3.complete_multipart_upload(Bucket=B, Key="mp", UploadId=up, MultipartUpload={"Parts": [
    {"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
assert s3.get_object(Bucket=B, Key="mp")["Body"].read() == large * 2 + edge[:1000]
# An empty last part is a file like any part.
up = s3.create_multipart_upload(Bucket=B, Key="mp0")["UploadId"]
q1 = s3.upload_part(Bucket=B, Key="mp0", UploadId=up, PartNumber=1, Body=large * 2)["ETag"]
q2 = s3.upload_part(Bucket=B, Key="mp0", UploadId=up, PartNumber=2, Body=b"")["ETag"]
s3.complete_multipart_upload(Bucket=B, Key="mp0", UploadId=up, MultipartUpload={"Parts": [
    {"PartNumber": 1, "ETag": q1}, {"PartNumber": 2, "ETag": q2}]})
assert s3.get_object(Bucket=B, Key="mp0")["Body"].read() == large * 2
s3.delete_object(Bucket=B, Key="mp0")
# Overwrites both ways.
s3.put_object(Bucket=B, Key="small", Body=large)
assert s3.get_object(Bucket=B, Key="small")["Body"].read() == large
s3.put_object(Bucket=B, Key="large", Body=small)
assert s3.get_object(Bucket=B, Key="large")["Body"].read() == small
keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=B)["Contents"]}
assert keys == {"small": len(large), "edge": len(edge), "empty": 0, "large": len(small),
                "small-copy": len(small), "large-copy": len(large),
                "mp": 2 * len(large) + 1000}, keys
for k in list(keys):
    if k not in ("small", "large"):
        s3.delete_object(Bucket=B, Key=k)
print("ok")
