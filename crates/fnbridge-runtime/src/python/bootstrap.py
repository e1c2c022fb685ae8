# fnbridge Python bootstrap: one function instance serving many invocations (embedded in the binary).
#
# Started as `python3 -u bootstrap.py '<config json>'` with the control socket as fd 0 and stdout and
# stderr on one pipe. The platform sends frames on the socket, one at a time:
#   request  = u32 header_len | u32 payload_len | header JSON | payload    (big endian)
#   response = u32 status     | u32 body_len    | body                     status: 0 ok, 1 error, 2 out of memory
# Header "t" is "i" (invoke: payload is the event), "n" (run the initializer) or "s" (run the PreStop hook). Everything else the
# function prints goes to the log pipe between "FC ... Start/End RequestId" markers; the End marker is
# written before the response, so the platform has the whole log once it has seen that marker.
# Keep this file free of per-call threads, spawns and payload copies: it is the warm path.

import json
import os
import struct
import sys
import time

OK, ERROR, OOM = 0, 1, 2
# Exit code used when even reporting a MemoryError fails; the platform maps it to out-of-memory.
OOM_EXIT = 97
_FRAME = struct.Struct(">II")
_BOOTSTRAP = os.path.abspath(__file__)

_current_request_id = ""


def _take_stdio():
    # The control socket arrives as stdin; move it to a private non-inheritable fd so user code and its
    # subprocesses see /dev/null there and can never write into the protocol.
    ctrl = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # One stream keeps print, logging and stderr in the order they were written.
    os.dup2(1, 2)
    # Markers go through a private copy of the log pipe so they arrive even if user code closes fd 1.
    marker = os.dup(1)
    return ctrl, marker


def _limit_memory(limit_bytes):
    if limit_bytes:
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
        except (ValueError, OSError):
            pass


def _setup_logging():
    import logging

    # The root format is exactly `{UTC yyyy-MM-ddTHH:mm:ss.fffZ} {requestId} [{LEVEL}] {message}` on every
    # Python version (runtime.md section 4), hence our own time formatting.
    class Formatter(logging.Formatter):
        def formatTime(self, record, datefmt=None):
            return _utc_stamp(record.created)

    # Every record carries the request id (as `fc_request_id`), also for handlers users add themselves.
    make_record = logging.getLogRecordFactory()

    def record_factory(*args, **kwargs):
        record = make_record(*args, **kwargs)
        record.fc_request_id = _current_request_id
        return record

    logging.setLogRecordFactory(record_factory)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter("%(asctime)s %(fc_request_id)s [%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return logging.getLogger("fc")


class Credentials:
    __slots__ = ("access_key_id", "access_key_secret", "security_token")

    def __init__(self, access_key_id, access_key_secret, security_token):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token


class FunctionMeta:
    __slots__ = ("name", "handler", "memory", "timeout", "initializer", "initialization_timeout",
                 "version_id", "qualifier")

    def __init__(self, cfg, version_id, qualifier):
        self.name = cfg["function_name"]
        self.handler = cfg["handler"]
        self.memory = cfg["memory"]
        self.timeout = cfg["timeout"]
        self.initializer = cfg["initializer"] or ""
        self.initialization_timeout = cfg["initializer_timeout"]
        self.version_id = version_id
        self.qualifier = qualifier


class ServiceMeta:
    __slots__ = ("name", "log_project", "log_store", "qualifier", "version_id")

    def __init__(self, name, qualifier, version_id):
        self.name = name
        self.log_project = ""
        self.log_store = ""
        self.qualifier = qualifier
        self.version_id = version_id


class Tracing:
    __slots__ = ("span_context", "jaeger_endpoint", "span_baggages")

    def __init__(self):
        self.span_context = ""
        self.jaeger_endpoint = ""
        self.span_baggages = {}


class FCContext:
    # The superset of the 3.6-3.10 and 3.12 context shapes, so code written for either runs unchanged.
    __slots__ = ("request_id", "credentials", "function", "service", "region", "account_id", "tracing",
                 "logger", "log_project", "log_store", "instance_id")

    def __init__(self, request_id, credentials, function, service, cfg, logger):
        self.request_id = request_id
        self.credentials = credentials
        self.function = function
        self.service = service
        self.region = cfg["region"]
        self.account_id = cfg["account_id"]
        self.tracing = Tracing()
        self.logger = logger
        self.log_project = ""
        self.log_store = ""
        self.instance_id = cfg["instance_id"]

    def getLogger(self):
        return self.logger


class HandlerNotFound(Exception):
    pass


class ResponseTooLarge(Exception):
    pass


def _resolve(handler):
    module_name, _, attr = handler.rpartition(".")
    if not module_name or not attr:
        raise HandlerNotFound("invalid handler %r: expected module.function" % handler)
    import importlib

    module = importlib.import_module(module_name.replace("/", "."))
    fn = getattr(module, attr, None)
    if fn is None:
        raise HandlerNotFound("handler %r not found: module %r has no attribute %r" % (handler, module_name, attr))
    if not callable(fn):
        raise HandlerNotFound("handler %r is not callable" % handler)
    return fn


def _stack_trace(exc):
    import traceback

    frames = []
    for f in traceback.extract_tb(exc.__traceback__):
        # The bootstrap's own frames and importlib's are noise to the user: FC shows user frames only.
        if f.filename == _BOOTSTRAP or f.filename.startswith("<frozen"):
            continue
        frames.append(['File "%s"' % f.filename, "line %d" % (f.lineno or 0), "in %s" % f.name, f.line or ""])
    return frames


def _user_frames(tb):
    # The bootstrap's frames lead every traceback of a handler; FC shows the user's frames only.
    while tb is not None and (tb.tb_frame.f_code.co_filename == _BOOTSTRAP
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen")):
        tb = tb.tb_next
    return tb


def _error_body(exc):
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable %s>" % type(exc).__name__
    body = {"errorMessage": message, "errorType": type(exc).__name__, "stackTrace": _stack_trace(exc)}
    return json.dumps(body).encode()


def _utc_stamp(t):
    g = time.gmtime(t)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        g.tm_year, g.tm_mon, g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec, int(t % 1 * 1000))


def _encode_result(result):
    if result is None:
        return b""
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8", "surrogateescape")
    if isinstance(result, (dict, list)):
        return json.dumps(result).encode()
    return str(result).encode("utf-8", "surrogateescape")


class Worker:
    def __init__(self, cfg, ctrl, marker, logger):
        self.cfg = cfg
        self.ctrl = ctrl
        self.marker = marker
        self.logger = logger
        self.handler = None
        self.meta_key = None
        self.meta = None
        self.creds_key = None
        self.creds = None

    def write_marker(self, text):
        try:
            os.write(self.marker, text.encode("utf-8", "surrogateescape"))
        except OSError:
            pass

    def log_exception(self, request_id, exc):
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__)))
        self.write_marker("%s %s [ERROR] %s" % (_utc_stamp(time.time()), request_id, text))

    def context(self, h):
        key = (h["q"], h["v"])
        if key != self.meta_key:
            # One version string everywhere: the context and FC_FUNCTION_VERSION agree, LATEST included.
            version = h["v"] or "LATEST"
            self.meta = (FunctionMeta(self.cfg, version, h["q"]),
                         ServiceMeta(self.cfg["function_name"], h["q"], version))
            self.meta_key = key
            os.environ["FC_FUNCTION_VERSION"] = version
            os.environ["FC_VER_ID"] = version
        creds = (h["ak"], h["sk"], h["st"])
        if creds != self.creds_key:
            self.creds = Credentials(*creds)
            self.creds_key = creds
        return FCContext(h["id"], self.creds, self.meta[0], self.meta[1], self.cfg, self.logger)

    def run(self, h, call, arg, start, end):
        global _current_request_id
        request_id = h["id"]
        _current_request_id = request_id
        self.write_marker("%s RequestId: %s\n" % (start, request_id))
        try:
            body = call(h, arg)
            status = OK
        except MemoryError as exc:
            status = OOM
            try:
                body = _error_body(exc)
            except MemoryError:
                body = b'{"errorMessage":"out of memory","errorType":"MemoryError","stackTrace":[]}'
        except Exception as exc:
            status = ERROR
            body = _error_body(exc)
            self.log_exception(request_id, exc)
        # User code may have swapped in buffered streams; what they hold belongs before the End marker.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        self.write_marker("%s RequestId: %s\n" % (end, request_id))
        return status, body

    def invoke(self, h, payload):
        handler = self.handler
        if handler is None:
            # Imported on first use, inside the first invocation's markers, so import-time output and
            # import errors land in that invocation's log and response.
            handler = self.handler = _resolve(self.cfg["handler"])
        body = _encode_result(handler(payload, self.context(h)))
        if len(body) > self.cfg["max_response_bytes"]:
            raise ResponseTooLarge("the function returned %d bytes, more than the limit of %d"
                                   % (len(body), self.cfg["max_response_bytes"]))
        return body

    def initialize(self, h, _payload):
        _resolve(self.cfg["initializer"])(self.context(h))
        return b""

    def pre_stop(self, h, _payload):
        _resolve(self.cfg["pre_stop"])(self.context(h))
        return b""

    def send(self, status, body):
        head = _FRAME.pack(status, len(body))
        data = memoryview(head + body if len(body) < 65536 else head)
        self.write_all(data)
        if len(body) >= 65536:
            self.write_all(memoryview(body))

    def write_all(self, data):
        while data:
            n = os.write(self.ctrl, data)
            data = data[n:]

    def serve(self):
        reader = open(self.ctrl, "rb", buffering=1 << 16, closefd=False)
        read = reader.read
        while True:
            head = read(8)
            if len(head) < 8:
                return  # the platform closed the socket: this instance is done
            header_len, payload_len = _FRAME.unpack(head)
            h = json.loads(read(header_len))
            payload = read(payload_len) if payload_len else b""
            t = h["t"]
            if t == "i":
                status, body = self.run(h, self.invoke, payload, "FC Invoke Start", "FC Invoke End")
            elif t == "n":
                status, body = self.run(h, self.initialize, None, "FC Initialize Start", "FC Initialize End")
            else:
                status, body = self.run(h, self.pre_stop, None, "FC PreStop Start", "FC PreStop End")
            del payload
            self.send(status, body)


def main():
    cfg = json.loads(sys.argv[1])
    ctrl, marker = _take_stdio()
    _limit_memory(cfg["memory_limit_bytes"])
    code_dir = cfg["code_dir"]
    os.chdir(code_dir)
    # sys.path[0] is the bootstrap's own directory; user code expects its code directory there instead.
    sys.path[0] = code_dir
    # FC's built-in modules (oss2, ...) come after the code, so a package the code brings wins.
    if cfg.get("layer_dir"):
        sys.path.append(cfg["layer_dir"])
    logger = _setup_logging()
    try:
        Worker(cfg, ctrl, marker, logger).serve()
    except MemoryError:
        os._exit(OOM_EXIT)
    os._exit(0)


if __name__ == "__main__":
    main()
