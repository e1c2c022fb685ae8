# -*- coding: utf-8 -*-
# Seed 002's log-dump function, corrected: the handler body is indented consistently, and the
# downloaded bytes (not the URL) are uploaded. The object store endpoint and target bucket come
# from the function's environment, so the same code runs on fnbridge and on Alibaba Cloud.
import json
import os

import oss2
import requests


def handler(event, context):
    creds = context.credentials
    auth = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
    endpoint = os.environ.get("OSS_ENDPOINT") or os.environ.get("FNBRIDGE_OSS_ENDPOINT", "http://127.0.0.1:9001")
    bucket = oss2.Bucket(auth, endpoint, os.environ.get("TARGET_BUCKET", "cdn-log-dump"))

    # Parse the event to get the source object info.
    eventObj = json.loads(event)["events"]
    fileUrl = eventObj[0]["eventParameter"]["filePath"]
    file = requests.get(fileUrl, timeout=60)
    file.raise_for_status()
    # The log's own name (`{domain}_{YYYY}_{MM}_{DD}_{HHMMSS}_{HHMMSS}.gz`) under its domain.
    name = fileUrl.split("?", 1)[0].rsplit("/", 1)[-1]
    domain = eventObj[0]["eventParameter"]["domain"]
    result = bucket.put_object(domain + "/" + name, file.content)

    return result.status
