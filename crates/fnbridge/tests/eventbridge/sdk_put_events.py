"""PutEvents with the alibabacloud-eventbridge SDK, unchanged apart from endpoint and keys.

Usage: sdk_put_events.py HOST:PORT  (keys in FNB_AK / FNB_SK). Prints "ok" when the answer
names the event with no failed entry.
"""
import sys
import os

from alibabacloud_eventbridge.client import Client
from alibabacloud_eventbridge.models import CloudEvent, Config

client = Client(Config(access_key_id=os.environ["FNB_AK"], access_key_secret=os.environ["FNB_SK"],
                       endpoint=sys.argv[1], protocol="http"))
event = CloudEvent(
    id="sdk-py-1",
    source="my.shop",
    type="order.created",
    subject="orders/1",
    datacontenttype="application/json",
    data=b'{"items": [{"sku": "b", "qty": 5}, {"sku": "a", "qty": 1}]}',
    extensions={"aliyuneventbusname": "default"},
)
resp = client.put_events([event])
assert resp.failed_entry_count == 0, resp.to_map()
assert resp.entry_list[0].event_id == "sdk-py-1", resp.to_map()
print("ok")
