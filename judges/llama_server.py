"""llama.cpp's OpenAI-compatible server with the portable CPU kernels only.

``python -m judges.llama_server --model FILE.gguf --host 127.0.0.1 --port N --n_ctx 2048
--chat_format gemma`` takes exactly the arguments of ``python -m llama_cpp.server`` and serves
the same API. One thing differs: the model is loaded with llama.cpp's ``use_extra_bufts``
turned off, so no weight is repacked into an "extra" buffer type (the AMX and the repacked
Q4/Q8 layouts llama.cpp picks per CPU).

Why:

- **It crashes otherwise on some machines.** On a CPU that advertises AMX (Intel Sapphire
  Rapids and later) llama.cpp puts the weights in its AMX buffer type; inside a virtual
  machine whose kernel does not hand out the AMX tile state, the first ``ldtilecfg`` is a
  general-protection fault and the server dies with SIGSEGV on its first request (seen on the
  project's 2-core Firecracker VMs: ``general protection fault ... in libggml-cpu.so``).
  llama-cpp-python 0.3.36 has no server option for it, hence this wrapper.
- **Verdicts shipped as data should not depend on which kernels a CPU happens to get.**
  Without extra buffer types every machine runs the same plain CPU path for the weights, so a
  regenerated file is more likely to match the shipped one (not guaranteed: SIMD width still
  differs between CPUs, and floating-point sums with it).

It is slower than the repacked path, which does not matter for a judge run of a few hundred
pairs. Needs the optional ``gemma`` extra (``llama-cpp-python[server]``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Final

_PATCHED: Final = "_tribunal_no_extra_bufts"


def disable_extra_buffer_types() -> None:
    """Make every model llama-cpp-python loads in this process skip extra buffer types."""
    import llama_cpp.llama_cpp as lib  # the ctypes bindings; `Llama` reads its defaults here

    original = lib.llama_model_default_params
    if getattr(original, _PATCHED, False):
        return

    def model_default_params() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    setattr(model_default_params, _PATCHED, True)
    lib.llama_model_default_params = model_default_params


def main(argv: Sequence[str] | None = None) -> None:
    disable_extra_buffer_types()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = ["llama_cpp.server", *(sys.argv[1:] if argv is None else argv)]
    serve()


if __name__ == "__main__":
    main()
