#!/usr/bin/env python3
"""The legacy PyTorch checkpoint reader (core/torch_pickle.c) on files written by torch.save itself.

    python3 tests/oracle/torch_pickle.py [path/to/libcelgan.so]     (or CELGAN_LIB=path/to/libcelgan.so)

Writes checkpoints with torch.save(..., _use_new_zipfile_serialization=False) into a temporary folder (state
dicts of every rank, views with offsets and strides, half and double storages, a state_dict inside a dict,
a real module's state_dict) and reads them through the C API with ctypes: names, shapes and values must be
exact. Files the reader must refuse (a pickle that would run code, integer storages, the zip format) must
be refused with CEL_ERROR_FORMAT and a message. Output is TAP. Without torch the whole program is skipped.
"""
import collections
import ctypes
import os
import sys
import tempfile

try:
    import torch
except ImportError:
    print("1..0 # SKIP torch is not installed (Debian: python3-torch)")
    sys.exit(0)

_count = 0
_failed = 0


def tap(ok, name):
    global _count, _failed
    _count += 1
    _failed += 0 if ok else 1
    print(f"{'ok' if ok else 'not ok'} {_count} - {name}", flush=True)
    return ok


def diag(msg):
    for line in str(msg).splitlines():
        print(f"# {line}", flush=True)


CEL_OK, CEL_ERROR_FORMAT = 0, 9


class TorchTensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("rank", ctypes.c_int32), ("shape", ctypes.c_int64 * 8),
                ("count", ctypes.c_int64), ("data", ctypes.POINTER(ctypes.c_float))]


lib_path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CELGAN_LIB", "libcelgan.so")
lib = ctypes.CDLL(lib_path)
lib.cel_torch_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
lib.cel_torch_open.restype = ctypes.c_int
lib.cel_torch_close.argtypes = [ctypes.c_void_p]
lib.cel_torch_count.argtypes = [ctypes.c_void_p]
lib.cel_torch_count.restype = ctypes.c_size_t
lib.cel_torch_tensor_at.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
lib.cel_torch_tensor_at.restype = ctypes.POINTER(TorchTensor)


def read(path):
    """(status, message, [(name, tensor)])"""
    handle = ctypes.c_void_p()
    err = ctypes.create_string_buffer(1024)
    st = lib.cel_torch_open(path.encode(), ctypes.byref(handle), err, len(err))
    out = []
    if st == CEL_OK:
        for i in range(lib.cel_torch_count(handle)):
            t = lib.cel_torch_tensor_at(handle, i).contents
            shape = [t.shape[k] for k in range(t.rank)]
            values = [t.data[k] for k in range(t.count)]
            out.append((t.name.decode(), torch.tensor(values, dtype=torch.float32).reshape(shape)))
        lib.cel_torch_close(handle)
    return st, err.value.decode(errors="replace"), out


def save_legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def check_same(name, path, want):
    st, msg, got = read(path)
    ok = st == CEL_OK and [k for k, _ in got] == list(want.keys())
    for (k, t), w in zip(got, want.values()):
        ok = ok and list(t.shape) == list(w.shape) and torch.equal(t, w.detach().to(torch.float32))
    if not tap(ok, f"/torch_pickle/torch_save/{name}"):
        diag(f"status {st}: {msg}")


def check_refused(name, path, expect):
    st, msg, _ = read(path)
    if not tap(st == CEL_ERROR_FORMAT and expect in msg, f"/torch_pickle/torch_save/refuses/{name}"):
        diag(f"status {st}: '{msg}' (expected to mention '{expect}')")


class RunsCode:
    """An object whose unpickling would call os.system: the reader must refuse it, never run it."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def main():
    torch.manual_seed(int(os.environ.get("CELGAN_TEST_SEED", "1")) % (1 << 31))
    with tempfile.TemporaryDirectory(prefix="celgan-torch-pickle-") as d:
        p = lambda n: os.path.join(d, n)
        big = torch.randn(6, 5, 4, 3)
        sd = collections.OrderedDict([
            ("scalar", torch.tensor(2.5)),
            ("vector", torch.randn(7)),
            ("matrix", torch.randn(3, 4)),
            ("conv.weight", torch.randn(8, 3, 3, 3)),
            ("rank5", torch.randn(2, 1, 3, 1, 2)),
            ("empty", torch.zeros(0, 3)),
            ("transposed", big[:, :, 0, 0].t()),          # strides (1, 60) into a shared storage
            ("sliced", big[2:4, 1:4, :, 1]),              # storage offset and gaps
            ("half", torch.randn(5).half()),
            ("double", torch.randn(2, 3).double()),
        ])
        save_legacy(sd, p("mixed.pth"))
        check_same("mixed_ranks_views_and_dtypes", p("mixed.pth"), sd)

        inner = collections.OrderedDict([("a.weight", torch.randn(4, 2)), ("a.bias", torch.randn(4))])
        save_legacy({"epoch": 12, "lr": 1e-4, "state_dict": inner}, p("nested.pth"))
        check_same("state_dict_inside_a_dict", p("nested.pth"), inner)

        module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, groups=1), torch.nn.ReLU(),
                                     torch.nn.Conv2d(8, 8, 3, groups=8), torch.nn.ConvTranspose2d(8, 4, 4, 2))
        save_legacy(module.state_dict(), p("module.pth"))
        check_same("module_state_dict", p("module.pth"), module.state_dict())

        # a broadcast view (stride 0) would have more elements than its storage: refused, as hostile
        # files could otherwise ask for any amount of memory
        save_legacy({"expanded": torch.randn(3, 1).expand(3, 4)}, p("expanded.pth"))
        check_refused("broadcast_view", p("expanded.pth"), "does not fit its storage")

        save_legacy(torch.nn.BatchNorm2d(4).state_dict(), p("batchnorm.pth"))
        check_refused("integer_storage", p("batchnorm.pth"), "LongStorage")

        save_legacy({"x": RunsCode()}, p("runs_code.pth"))
        check_refused("pickle_that_runs_code", p("runs_code.pth"), "is not allowed")

        torch.save(inner, p("zip.pth"))
        check_refused("zip_format", p("zip.pth"), "zip")
    print(f"1..{_count}")
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
