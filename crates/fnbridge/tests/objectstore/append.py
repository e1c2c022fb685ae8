# AppendObject with oss2 (its CRC-64 check on: each append's x-oss-hash-crc64ecma is checked
# against the CRC it carries on from the previous one). argv: endpoint, step.
#   first: creates the object with one append.
#   more: four more appends, one cut off mid-body by the client, a wrong position, then reads.
import os, sys, oss2
ep, step = sys.argv[1], sys.argv[2]
auth = oss2.Auth(os.environ["FNB_AK"], os.environ["FNB_SK"])
b = oss2.Bucket(auth, ep, "apb")
KEY = "logs/app ü.log"
def chunk(n):
    return bytes((i * 7 + n) % 256 for i in range(100 * 1024 + n))

if step == "first":
    b.create_bucket()
    # An empty first append makes an empty appendable object, which takes the next append.
    assert b.append_object("empty first", 0, b"").next_position == 0
    assert b.append_object("empty first", 0, b"abc").next_position == 3
    assert b.get_object("empty first").read() == b"abc"
    b.delete_object("empty first")
    r = b.append_object(KEY, 0, chunk(0))
    assert r.next_position == len(chunk(0)), r.next_position
    print("ok")
    sys.exit(0)

want = chunk(0)
crc = b.head_object(KEY).server_crc
pos = len(want)
for n in (1, 2):
    r = b.append_object(KEY, pos, chunk(n), init_crc=crc)
    want += chunk(n)
    pos, crc = r.next_position, r.crc
    assert pos == len(want), (pos, len(want))

class Cut(Exception):
    pass
def cut_off():
    yield b"x" * (64 * 1024)
    yield b"y" * (64 * 1024)
    raise Cut()
try:
    b.append_object(KEY, pos, cut_off())
    raise SystemExit("an append cut off mid-body was acknowledged")
except (Cut, oss2.exceptions.RequestError, oss2.exceptions.OssError):
    pass
# Nothing of it is visible: same length, and the next append goes at the same position.
assert b.head_object(KEY).content_length == pos
try:
    b.append_object(KEY, pos + 1, b"z")
    raise SystemExit("append at a wrong position worked")
except oss2.exceptions.PositionNotEqualToLength as e:
    assert e.headers["x-oss-next-append-position"] == str(pos), e.headers
for n in (3, 4):
    r = b.append_object(KEY, pos, chunk(n), init_crc=crc)
    want += chunk(n)
    pos, crc = r.next_position, r.crc
got = b.get_object(KEY)  # oss2 checks the whole object's CRC-64 as it reads
assert got.read() == want
assert got.headers["x-oss-object-type"] == "Appendable"
assert int(got.headers["x-oss-hash-crc64ecma"]) == crc
assert b.get_object(KEY, byte_range=(len(want) - 10, len(want) - 1)).read() == want[-10:]
print("ok")
