"""Record half of record-and-compare: call the student's function, emit the outputs as data.

This module is self-contained (standard library and numpy; torch only when a value is a
tensor) because its *source text* is what the grader sends into the student's kernel:
the hidden part of a test cell becomes this module's code plus one call to ``emit``.
Nothing here decides a grade. The kernel is untrusted: a student can change anything in
it, so whatever ``record`` returns is treated as the student's claim about their own
outputs, and a trusted process (``reggrader.compare``) decides whether those outputs are
right. The same code is imported normally on the trusted side to encode the grader's
inputs and to decode (defensively) what came back.

Wire format (JSON, no pickle). A value is encoded as one of::

    null | {"bool": b} | {"int": "123"} | {"float": x}  (x a number or "nan"/"inf"/"-inf")
    {"str": s} | {"array": {"dtype": "<f8", "shape": [..], "data": [..]}}
    {"tensor": <array>} | {"seq": [..], "kind": "tuple"|"list"} | {"dict": [[key, value], ..]}
    {"rng": seed}  (inputs only: a fresh ``np.random.default_rng(seed)``)
    {"object": "TypeName"} | {"too_large": n}

A record is ``{"part": id, "missing": bool, "cases": [{"result": value} | {"raised":
[names of the exception's classes], "message": str}, with "mutated": [argument names]]}``.
"""

import json
import math
import time

import numpy as np

MIME = "application/vnd.reggrader.record+json"
MAX_ELEMENTS = 2_000_000   # largest array (elements) a record may carry
MAX_DEPTH = 8              # nesting of tuples/lists/dicts
MAX_STR = 2000             # longest string or exception message kept


class Rng:
    """A case argument that stands for ``np.random.default_rng(seed)`` (made fresh per call)."""

    def __init__(self, seed):
        self.seed = int(seed)

    def __repr__(self):
        return f"Rng({self.seed})"


def _enc_float(x):
    x = float(x)
    if math.isnan(x):
        return {"float": "nan"}
    if math.isinf(x):
        return {"float": "inf" if x > 0 else "-inf"}
    return {"float": x}


def _enc_array(arr):
    arr = np.asarray(arr)
    if arr.size > MAX_ELEMENTS:
        return {"too_large": int(arr.size)}
    kind = arr.dtype.kind
    if kind == "b":
        data = arr.ravel().tolist()
    elif kind in "iu":
        data = [str(v) for v in arr.ravel().tolist()]
    elif kind == "f":
        flat = arr.astype(np.float64).ravel()
        if np.isfinite(flat).all():
            data = flat.tolist()
        else:
            data = [_enc_float(v)["float"] for v in flat.tolist()]
    else:
        return {"object": "ndarray of dtype " + str(arr.dtype)}
    return {"array": {"dtype": arr.dtype.str, "shape": list(arr.shape), "data": data}}


def encode(x, depth=0):
    """Encode a value as JSON-ready data (never raises for ordinary objects)."""
    if depth > MAX_DEPTH:
        return {"object": "nesting deeper than %d" % MAX_DEPTH}
    if x is None:
        return None
    if isinstance(x, Rng):
        return {"rng": x.seed}
    if isinstance(x, (bool, np.bool_)):
        return {"bool": bool(x)}
    if isinstance(x, (int, np.integer)):
        return {"int": str(int(x))}
    if isinstance(x, (float, np.floating)):
        return _enc_float(x)
    if isinstance(x, str):
        return {"str": x[:MAX_STR]}
    if isinstance(x, np.ndarray):
        return _enc_array(x)
    if isinstance(x, (tuple, list)):
        return {
            "seq": [encode(v, depth + 1) for v in x[:10_000]],
            "kind": "tuple" if isinstance(x, tuple) else "list",
        }
    if isinstance(x, dict):
        return {"dict": [[str(k)[:MAX_STR], encode(v, depth + 1)] for k, v in list(x.items())[:10_000]]}
    mod = type(x).__module__ or ""
    if mod.startswith("torch") and hasattr(x, "detach"):
        try:
            return {"tensor": _enc_array(x.detach().cpu().numpy())}
        except Exception:  # pragma: no cover - exotic tensors
            return {"object": type(x).__name__}
    return {"object": type(x).__name__[:200]}


class DecodeError(ValueError):
    """The data is not a well-formed encoded value."""


def _dec_float(v):
    if isinstance(v, bool):
        raise DecodeError("bool where a float was expected")
    if isinstance(v, (int, float)):
        return float(v)
    if v in ("nan", "inf", "-inf"):
        return float(v)
    raise DecodeError("bad float %r" % (v,))


def _dec_array(a):
    if not isinstance(a, dict) or set(a) != {"dtype", "shape", "data"}:
        raise DecodeError("bad array")
    dtype = np.dtype(str(a["dtype"]))
    shape = a["shape"]
    if dtype.kind not in "biuf":
        raise DecodeError("bad array dtype %s" % dtype)
    if not isinstance(shape, list) or len(shape) > 32 or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape
    ):
        raise DecodeError("bad array shape")
    data = a["data"]
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if not isinstance(data, list) or len(data) != size or size > MAX_ELEMENTS:
        raise DecodeError("array data does not match its shape")
    if dtype.kind == "b":
        if not all(isinstance(v, bool) for v in data):
            raise DecodeError("bad bool data")
        flat = np.array(data, dtype=bool)
    elif dtype.kind in "iu":
        flat = np.array([int(v) for v in data], dtype=dtype) if data else np.zeros(0, dtype)
    else:
        flat = np.array([_dec_float(v) for v in data], dtype=np.float64).astype(dtype)
    return flat.reshape(shape)


def decode(v, depth=0, torch_ok=True):
    """Inverse of :func:`encode`; raises :class:`DecodeError` on malformed data."""
    if depth > MAX_DEPTH + 1:
        raise DecodeError("nesting too deep")
    if v is None:
        return None
    if not isinstance(v, dict) or len(v) not in (1, 2):
        raise DecodeError("bad value %s" % type(v).__name__)
    if "bool" in v and isinstance(v["bool"], bool):
        return v["bool"]
    if "int" in v:
        return int(str(v["int"]))
    if "float" in v:
        return _dec_float(v["float"])
    if "str" in v and isinstance(v["str"], str):
        return v["str"]
    if "array" in v:
        return _dec_array(v["array"])
    if "tensor" in v:
        arr = _dec_array(v["tensor"]["array"]) if isinstance(v["tensor"], dict) and "array" in v["tensor"] else None
        if arr is None:
            raise DecodeError("bad tensor")
        if not torch_ok:
            return arr
        import torch

        return torch.from_numpy(arr.copy())
    if "seq" in v and isinstance(v["seq"], list):
        items = [decode(x, depth + 1, torch_ok) for x in v["seq"]]
        return tuple(items) if v.get("kind") == "tuple" else items
    if "dict" in v and isinstance(v["dict"], list):
        out = {}
        for pair in v["dict"]:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise DecodeError("bad dict item")
            out[pair[0]] = decode(pair[1], depth + 1, torch_ok)
        return out
    if "rng" in v:
        return np.random.default_rng(int(v["rng"]))
    if "object" in v or "too_large" in v:
        return Opaque(v)
    raise DecodeError("unknown value %r" % (sorted(v),))


class Opaque:
    """A value the record could not carry (an unsupported object, an oversized array)."""

    def __init__(self, info):
        self.info = info

    def __repr__(self):
        if "too_large" in self.info:
            return "an array too large to record (%s elements)" % self.info["too_large"]
        return "an object of type %s" % self.info.get("object")


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _is_rng(encoded):
    return isinstance(encoded, dict) and "rng" in encoded


def record(namespace, part):
    """Call ``namespace[part["call"]]`` on each case of ``part``; return the record (data).

    ``part`` is ``{"id", "call", "names": [parameter names], "cases": [{"args": [...],
    "kwargs": {...}, "call"?}]}`` with encoded arguments. Each call gets freshly decoded
    arguments; afterwards the arguments are re-encoded to notice in-place mutation.
    Exceptions raised by the student's function are recorded, except KeyboardInterrupt
    (the grader's timeout), which ends the cell.
    """
    out = {"part": part["id"], "missing": [], "cases": []}
    for case in part["cases"]:
        name = case.get("call", part["call"])
        fn = namespace.get(name)
        if not callable(fn):
            if name not in out["missing"]:
                out["missing"].append(name)
            out["cases"].append({"undefined": name})
            continue
        args = [decode(a) for a in case["args"]]
        kwargs = {k: decode(a) for k, a in case.get("kwargs", {}).items()}
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit, MemoryError included
            entry = {
                "raised": [c.__name__ for c in type(exc).__mro__][:20],
                "message": str(exc)[:MAX_STR] if not isinstance(exc, MemoryError) else "",
            }
        else:
            entry = {"result": encode(result)}
        entry["seconds"] = round(time.perf_counter() - start, 6)
        names = part.get("names") or []
        names = names + ["argument %d" % i for i in range(len(names), len(args))]
        mutated = [
            names[i]
            for i, a in enumerate(args)
            if not _is_rng(case["args"][i]) and not _same(encode(a), case["args"][i])
        ]
        mutated += [
            k for k, a in kwargs.items()
            if not _is_rng(case["kwargs"][k]) and not _same(encode(a), case["kwargs"][k])
        ]
        if mutated:
            entry["mutated"] = mutated
        out["cases"].append(entry)
    return out


def emit(rec):
    """Send a record out of the kernel as a display output with its own MIME type."""
    from IPython.display import display

    display({MIME: rec}, raw=True)
