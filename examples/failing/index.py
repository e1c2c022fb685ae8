# -*- coding: utf-8 -*-
# A handler that always fails, to see retries and the dead-letter queue:
#   fnbridge function create failing --code examples/failing
#   fnbridge trigger create failing logs --type cdn_events --config @examples/cdn-sample/trigger-LogFileCreated.json
#   fnbridge events put examples/events/LogFileCreated.json
#   fnbridge dlq list        (after the retries: 3 by default, 1 s, 2 s, 4 s apart ±20%)
import json
import logging

logger = logging.getLogger("failing")


def handler(event, context):
    evt = json.loads(event)["events"][0]
    logger.info("giving up on %s %s", evt["eventName"], evt.get("traceId"))
    raise RuntimeError("this sample always fails: event %s was not processed" % evt.get("traceId"))
