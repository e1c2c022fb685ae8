import os
# Uploads that must (and must not) fire the oss and cos triggers. argv: endpoint.
import sys, oss2
from qcloud_cos import CosConfig, CosS3Client
ep = sys.argv[1]
auth = oss2.Auth(os.environ["FNB_AK"], os.environ["FNB_SK"])
photos = oss2.Bucket(auth, ep, "photos")
photos.create_bucket()
other = oss2.Bucket(auth, ep, "other")
other.create_bucket()
photos.put_object("uploads/相册 a+b.jpg", b"jpeg bytes", headers={"x-oss-meta-camera": "x100"})
photos.put_object("uploads/b.png", b"png")
photos.put_object("elsewhere/c.jpg", b"jpg")
other.put_object("uploads/d.jpg", b"jpg")
# COS: the SDK addresses {bucket}.cos.{region}.myqcloud.com; its proxy setting sends the
# requests to fnbridge, which reads the bucket from the Host.
cos = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=os.environ["FNB_AK"], SecretKey=os.environ["FNB_SK"],
                            Scheme="http", Proxies={"http": ep}))
oss2.Bucket(auth, ep, "pics-1250000000").create_bucket()
cos.put_object(Bucket="pics-1250000000", Key="filterdir/a.jpg", Body=b"cos bytes")
assert cos.get_object(Bucket="pics-1250000000", Key="filterdir/a.jpg")["Body"].get_raw_stream().read() == b"cos bytes"
cos.put_object(Bucket="pics-1250000000", Key="gone.txt", Body=b"x")
cos.delete_object(Bucket="pics-1250000000", Key="gone.txt")
print("ok")
