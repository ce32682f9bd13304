"""Python's xmlrpc.client as the reference peer of the codec's differential test.

Reads one JSON object on stdin and writes one on stdout, so a whole batch costs one process:

  in:  {"seed": S, "count": N, "documents": [xml, ...]}
  out: {"generated": [{"xml": ..., "value": TAG}, ...],   N random values, written by Python
                                                          (even: a response, odd: a call), and
                                                          what Python reads of its own document
        "read": [{"value": TAG, "xml": ..., "again": TAG} what Python reads of each document given,
                 | {"error": "..."}, ...]}                the document Python writes of that value
                                                          in the same form, and what Python reads
                                                          of that one

A TAG is a value as JSON, its XML-RPC type kept: ["i", "123"], ["d", repr], ["b", true], ["s", text],
["n"], ["x", base64], ["t", "YYYY-MM-DDTHH:MM:SS"], ["a", [TAG, ...]], ["m", {name: TAG}].
"""

import base64
import datetime
import json
import random
import struct
import sys
import xmlrpc.client

PIECES = ["a", "é", "😀", "中", "<", ">", "&", "]]>", "]", "\r", "\n", "\r\n", "\t", " ", '"', "'",
          "&amp;", "&#13;", "\u00a0", "\u0085", "\u2028", "\ufeff", "x" * 20]


def tag(value):
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["d", repr(value)]
    if isinstance(value, str):
        return ["s", value]
    if value is None:
        return ["n"]
    if isinstance(value, (bytes, bytearray)):
        return ["x", base64.b64encode(value).decode()]
    if isinstance(value, datetime.datetime):
        return ["t", "%04d-%02d-%02dT%02d:%02d:%02d" % (
            value.year, value.month, value.day, value.hour, value.minute, value.second)]
    if isinstance(value, list):
        return ["a", [tag(item) for item in value]]
    if isinstance(value, dict):
        return ["m", {name: tag(item) for name, item in value.items()}]
    raise TypeError(type(value))


def generator(seed):
    rng = random.Random(seed)

    def text():
        return "".join(rng.choice(PIECES) for _ in range(rng.randrange(7)))

    def double():
        r = rng.random()
        if r < 0.2:
            return rng.uniform(-1e6, 1e6)
        if r < 0.4:
            # Whole doubles, below and past 32 bits, up to far past 2**53.
            return float(rng.randrange(-2**rng.randrange(1, 80), 2**rng.randrange(1, 80)))
        if r < 0.5:
            return rng.choice([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e21, 1e-7, 2.0**31, -2.0**31,
                               2.0**53 + 2, 0.1, 1 / 3])
        while True:  # Any finite double, from its bits.
            (bits,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
            if bits == bits and abs(bits) != float("inf"):
                return bits

    def value(depth):
        r = rng.random()
        if depth > 3 or r < 0.25:
            return text()
        if r < 0.35:
            return rng.choice([rng.randrange(-2**31, 2**31), 0, 2**31 - 1, -2**31,
                               rng.randrange(-1000, 1000)])
        if r < 0.5:
            return double()
        if r < 0.54:
            return rng.random() < 0.5
        if r < 0.57:
            return None
        if r < 0.64:
            return datetime.datetime(rng.randrange(1, 10000), rng.randrange(1, 13), rng.randrange(1, 29),
                                     rng.randrange(24), rng.randrange(60), rng.randrange(60))
        if r < 0.67:
            return bytes(rng.getrandbits(8) for _ in range(rng.randrange(8)))
        if r < 0.82:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {text(): value(depth + 1) for _ in range(rng.randrange(4))}

    return value


def dump(value, as_call):
    if as_call:
        return xmlrpc.client.dumps((value,), "metodo.x", allow_none=True)
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True)


def load(xml):
    (value,), method = xmlrpc.client.loads(xml, use_builtin_types=True)
    return value, method is not None


def main():
    batch = json.load(sys.stdin)
    value = generator(batch["seed"])
    generated = []
    for i in range(batch["count"]):
        xml = dump(value(0), i % 2 == 1)
        generated.append({"xml": xml, "value": tag(load(xml)[0])})
    read = []
    for xml in batch["documents"]:
        try:
            got, as_call = load(xml)
            again = dump(got, as_call)
            read.append({"value": tag(got), "xml": again, "again": tag(load(again)[0])})
        except Exception as error:  # A document Python refuses: the test reports it.
            read.append({"error": repr(error)})
    json.dump({"generated": generated, "read": read}, sys.stdout)


main()
