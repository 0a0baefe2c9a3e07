"""The other side of tests/grpc_core.rs: gRPC's C core (Python `grpcio`), as a server or a
client of the test service `/test.Chain/Call` (no protoc: the two messages are encoded by
hand, `Hop { work_ms = 1 }` in, `Budgets { repeated micros = 1 }` out).

    grpc_core_peer.py check                      exit 0 if grpcio imports
    grpc_core_peer.py serve                      prints "port N", then one line per call
    grpc_core_peer.py call ADDR TIMEOUT WORK_MS  calls once (TIMEOUT in seconds, or "none")

`serve` answers a call with the time the caller left it (`context.time_remaining()`, in
microseconds, 0 for none) after waiting up to WORK_MS for the call to end, and prints
"started budget_us=B" when a call arrives and "ended how=H" when it is over, where H is
"deadline" (its deadline passed), "cancelled" (the client went away first) or "done".
`call` prints "status CODE budgets B1,B2,..." (or "status CODE details ..."); when it reads
"cancel" on its standard input it cancels the call, then prints the status it got.
"""

import sys
import threading


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(data):
    """The varint fields of a message, as (number, value), packed ones unpacked."""
    out, i = [], 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
            out.append((number, value))
        elif wire == 2:
            length, i = read_varint(data, i)
            end = i + length
            while i < end:
                value, i = read_varint(data, i)
                out.append((number, value))
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return out


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve():
    from concurrent import futures

    import grpc

    def call(request, context):
        work_ms = dict(fields(request)).get(1, 0)
        left = context.time_remaining()
        # No deadline: C core reports none, or one at the end of time.
        budget_us = 0 if left is None or left > 1e9 else max(0, int(left * 1e6))
        ended = threading.Event()
        # Registered before the test hears of the call (it may end the call at once), and
        # False if the call is over already.
        if not context.add_callback(ended.set):
            ended.set()
        say("started budget_us=%d" % budget_us)
        how = "done"
        if work_ms and ended.wait(work_ms / 1000.0):
            left = context.time_remaining()
            how = "deadline" if left is not None and left <= 0.001 else "cancelled"
        say("ended how=%s" % how)
        return varint(1 << 3) + varint(budget_us)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler(
        "test.Chain", {"Call": grpc.unary_unary_rpc_method_handler(call)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    say("port %d" % port)
    # Ends when the test closes our standard input (or kills us).
    sys.stdin.read()
    server.stop(0)


def call(addr, timeout, work_ms):
    import grpc

    channel = grpc.insecure_channel(addr)
    method = channel.unary_unary("/test.Chain/Call")
    request = varint(1 << 3) + varint(int(work_ms))
    future = method.future(request, timeout=None if timeout == "none" else float(timeout))
    say("sent")

    def cancel_on_request():
        for line in sys.stdin:
            if line.strip() == "cancel":
                future.cancel()
                return

    threading.Thread(target=cancel_on_request, daemon=True).start()
    try:
        reply = future.result()
        micros = [str(v) for n, v in fields(reply) if n == 1]
        say("status OK budgets %s" % ",".join(micros))
    except grpc.FutureCancelledError:
        say("status CANCELLED details cancelled by the client")
    except grpc.RpcError as e:
        say("status %s details %s" % (e.code().name, e.details()))
    channel.close()


def main():
    what = sys.argv[1]
    if what == "check":
        import grpc  # noqa: F401
    elif what == "serve":
        serve()
    elif what == "call":
        call(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit("unknown command %r" % what)


if __name__ == "__main__":
    main()
