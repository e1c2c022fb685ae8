"""PutEvents refusals as the alibabacloud-eventbridge SDK sees them (the SDK unchanged apart from
endpoint and keys): a refused request raises TeaException with the server's `code` and
`[EventBridgeError-{requestId}] {message}`; an invalid entry is a failed entry, not an exception.

Usage: sdk_errors.py HOST:PORT  (keys in FNB_AK / FNB_SK). Prints one line per case, "ok" last.
"""
import os
import re
import sys

from alibabacloud_eventbridge.client import Client
from alibabacloud_eventbridge.models import CloudEvent, Config
from Tea.exceptions import TeaException


def client(secret):
    return Client(Config(access_key_id=os.environ["FNB_AK"], access_key_secret=secret,
                         endpoint=sys.argv[1], protocol="http"))


def event(i, bus="default", **kw):
    return CloudEvent(id=f"err-{i}", source="my.shop", type="order.created",
                      data=b'{"n": 1}', extensions={"aliyuneventbusname": bus}, **kw)


def refused(c, events, code, needle):
    try:
        c.put_events(events)
    except TeaException as e:
        assert e.code == code, (e.code, e.message, e.data)
        # The SDK builds "[EventBridgeError-{requestId}] {message}" from the body.
        assert re.match(r"^\[EventBridgeError-1-[0-9a-f]{8}-[0-9a-f]{24}\] ", e.message), e.message
        assert needle in e.message, (needle, e.message)
        print(f"refused {code}: {e.message}")
        return
    raise AssertionError(f"no exception; expected {code}")


good = client(os.environ["FNB_SK"])
refused(good, [event(1, bus="nosuchbus")], "EventBusNotExist", "event bus 'nosuchbus' does not exist")
refused(good, [event(i) for i in range(101)], "InvalidArgument", "1 to 100 events, got 101")
refused(client("wrong-secret"), [event(2)], "SignatureNotMatch", "signature")

# A malformed entry is answered per entry, and the valid one beside it is accepted.
resp = good.put_events([event(3, specversion="0.3"), event(4)])
assert resp.failed_entry_count == 1, resp.to_map()
bad, ok = resp.entry_list
assert bad.event_id == "err-3" and bad.error_code == "InvalidArgument", resp.to_map()
assert "specversion" in bad.error_message, resp.to_map()
assert ok.event_id == "err-4" and ok.error_code is None, resp.to_map()
print("entry err-3 InvalidArgument:", bad.error_message)
print("ok")
