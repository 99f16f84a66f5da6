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

It also adds one route, ``POST /v1/next_token`` (`next_token_logprobs`): the exact
log-probabilities of a few candidate next tokens after a prompt, which the ``next_token``
verdict mode reads (`judges.core.next_token`). Start the server with ``--logits_all false``
for it: only the last position's logits are then computed.
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


NEXT_TOKEN_PATH: Final = "/v1/next_token"
TOP_K: Final = 5


def next_token_logprobs(llama: Any, prompt: str, candidates: Sequence[str]) -> dict[str, Any]:
    """Log-probabilities of ``candidates`` (each one token) as the token after ``prompt``.

    Read from the full softmax over the vocabulary at the prompt's last position, so every
    candidate gets its exact value (the ``logprobs`` of ``/v1/completions`` lists only the top
    alternatives and needs ``logits_all``, which computes the vocabulary's 262,144 logits at
    every prompt position: most of the time of a call). The prompt's longest prefix already in
    the model's cache is not evaluated again.
    """
    import numpy as np

    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    if not tokens:
        raise ValueError("the prompt has no tokens")
    if len(tokens) >= llama.n_ctx():
        raise ValueError(f"the prompt has {len(tokens)} tokens, n_ctx is {llama.n_ctx()}")
    ids: dict[str, int] = {}
    for text in candidates:
        found = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(found) != 1:
            raise ValueError(f"candidate {text!r} is {len(found)} tokens, not one")
        ids[text] = found[0]
    cached = list(llama.input_ids[: llama.n_tokens])
    reused = 0
    while reused < min(len(cached), len(tokens) - 1) and cached[reused] == tokens[reused]:
        reused += 1
    llama.n_tokens = reused
    llama.eval(tokens[reused:])
    n_vocab = llama.n_vocab()
    # The last position's row: llama.cpp's "-1" is the last output of the batch, whether only
    # the last token had one (--logits_all false) or every token did.
    row = llama._ctx.get_logits_ith(-1)
    logits = np.ctypeslib.as_array(row, shape=(n_vocab,)).astype(np.float64)
    top = float(logits.max())
    logprobs = logits - (top + float(np.log(np.exp(logits - top).sum())))
    best = np.argsort(-logprobs)[:TOP_K]
    return {
        "logprobs": {text: float(logprobs[i]) for text, i in ids.items()},
        "top": [
            [llama.detokenize([int(i)]).decode("utf-8", errors="replace"), float(logprobs[i])]
            for i in best
        ],
        "prompt_tokens": len(tokens),
        "reused_tokens": reused,
    }


def add_next_token_route(app: Any) -> None:
    """``POST /v1/next_token`` with ``{"prompt": str, "candidates": [str, ...]}``."""
    import contextlib

    from fastapi import Body, HTTPException
    from llama_cpp.server.app import get_llama_proxy
    from starlette.concurrency import run_in_threadpool

    async def next_token(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        prompt, candidates = body.get("prompt"), body.get("candidates")
        if not isinstance(prompt, str) or not isinstance(candidates, list):
            raise HTTPException(422, "give prompt (a string) and candidates (a list)")
        async with contextlib.asynccontextmanager(get_llama_proxy)() as proxy:
            llama = proxy(body.get("model"))
            try:
                return await run_in_threadpool(next_token_logprobs, llama, prompt, candidates)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None

    app.add_api_route(NEXT_TOKEN_PATH, next_token, methods=["POST"])


def main(argv: Sequence[str] | None = None) -> None:
    disable_extra_buffer_types()
    import llama_cpp.server.__main__ as server_main

    create_app = server_main.create_app

    def create_app_with_next_token(**kwargs: Any) -> Any:
        app = create_app(**kwargs)
        add_next_token_route(app)
        return app

    server_main.create_app = create_app_with_next_token  # type: ignore[assignment]
    sys.argv = ["llama_cpp.server", *(sys.argv[1:] if argv is None else argv)]
    server_main.main()


if __name__ == "__main__":
    main()
