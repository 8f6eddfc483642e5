"""Minimal stand-in for torch so `import xgrammar` works for grammar parsing in tests.

xgrammar 0.2.8 imports torch at module level (matcher/testing) but parsing EBNF never calls it.
Only the names it touches exist here; tensors are numpy arrays (the matcher takes any DLPack array).
"""

from typing import Any

import numpy


class _Unavailable:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("torch stub: tensors are not available in the grammar oracle")


class Tensor(_Unavailable):
    pass


class LongTensor(Tensor):
    pass


class FloatTensor(Tensor):
    pass


int32 = numpy.int32
int64 = numpy.int64
float32 = numpy.float32


def tensor(data: Any, dtype: Any = None, **kwargs: Any) -> Any:
    # matcher.py builds a module-level constant with this at import; numpy stands in.
    return numpy.asarray(data, dtype=dtype)


def full(shape: Any, fill: Any, dtype: Any = None, **kwargs: Any) -> Any:
    return numpy.full(shape, fill, dtype=dtype)
