"""One of the concurrent PutEvents clients of the kill -9 test (the alibabacloud-eventbridge SDK,
unchanged apart from endpoint and keys).

Usage: crash_put_events.py HOST:PORT DIR ID  (keys in FNB_AK / FNB_SK). Puts batches of five
events with ids c{ID}-{n} until the server goes away; after each answered request, appends the
ids of its accepted entries to DIR/acked-{ID} (flushed, so the list survives this process).
"""
import os
import sys

from alibabacloud_eventbridge.client import Client
from alibabacloud_eventbridge.models import CloudEvent, Config

endpoint, out, cid = sys.argv[1], sys.argv[2], sys.argv[3]
client = Client(Config(access_key_id=os.environ["FNB_AK"], access_key_secret=os.environ["FNB_SK"],
                       endpoint=endpoint, protocol="http", read_timeout=30000,
                       connect_timeout=5000))
BATCH = 5
with open(os.path.join(out, f"acked-{cid}"), "a") as f:
    for n in range(0, 1_000_000, BATCH):
        ids = [f"c{cid}-{n + i}" for i in range(BATCH)]
        events = [CloudEvent(id=i, source="my.shop", type="order.created", subject=f"orders/{i}",
                             data=b'{"n": 1}', extensions={"aliyuneventbusname": "default"})
                  for i in ids]
        try:
            resp = client.put_events(events)
        except Exception as e:
            print(f"client {cid} stopped after {n} events: {type(e).__name__}", file=sys.stderr)
            break
        for entry in resp.entry_list:
            if entry.error_code is None:
                f.write(entry.event_id + "\n")
        f.flush()
print("ok")
