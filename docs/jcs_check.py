#!/usr/bin/env python3
"""Print the bytes a gpuaudit signature covers: RFC 8785 (JCS) canonical JSON of a result
without its "signature" member. Standard library only, short enough to audit.

    python3 jcs_check.py RESULT.json > signed-bytes.bin
"""
import json
import sys
from decimal import Decimal


def number(x):
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int):
        return str(x)  # exact digits (RFC 8785 for |x| <= 2^53; gpuaudit's extension above)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("NaN/Infinity are not JSON")
    if x == 0:
        return "0"
    # repr() gives the shortest round-trip digits; lay them out as ECMAScript does.
    sign, digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    s = "".join(map(str, digits))
    k = len(s)
    n = exp + k
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        out = s[0] + ("." + s[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return ("-" if x < 0 else "") + out


def string(s):
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[c])
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def canon(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return number(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
    return "{" + ",".join(string(k) + ":" + canon(x) for k, x in items) + "}"


def no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate member name %r" % k)
        d[k] = v
    return d


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        result = json.load(f, object_pairs_hook=no_duplicates)
    result.pop("signature", None)
    sys.stdout.buffer.write(canon(result).encode("utf-8"))
