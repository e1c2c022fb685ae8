# -*- coding: utf-8 -*-
import logging
import json

logger = logging.getLogger("cdn-sample")

def handler(event, context):
    evt = json.loads(event)
    eventObj = evt["events"][0]
    eventName = eventObj['eventName']
    info = ""
    eventParam = eventObj['eventParameter']
    domain = eventParam['domain']
    if eventName == "CachedObjectsRefreshed" or eventName == "CachedObjectsPushed":
        objPathList = eventParam['objectPath']
        info = ",".join(objPathList)
    elif eventName == "LogFileCreated":
        info = eventParam['filePath']
    elif eventName == "CdnDomainStarted" or eventName == "CdnDomainStopped":
        # Your business logic here
        pass
    elif eventName == "CdnDomainAdded" or eventName == "CdnDomainDeleted":
        # Your business logic here
        pass
    return f"eventName:{eventName}, domain: {domain}, info: {info}"
