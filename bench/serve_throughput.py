"""`tunelab serve` throughput: batched decoding vs one request at a time, same requests, one run.

    python bench/serve_throughput.py [--model builtin:tiny-code] [--clients 1,8,32] [--requests 2]
                                     [--max-tokens 32] [--max-batch-size 16]

The server runs in-process on 127.0.0.1 (a free port) over real HTTP. For each client count C,
C threads each send `--requests` chat completions one after another (greedy, distinct built-in
stdlib-instruct instructions), first to a server with `--max-batch-size` (batched), then to one
with max batch size 1 (one at a time, the server before batching). Printed per C: completion
tokens/s of each and the ratio. Each request's text must be identical in both (the script exits 1
otherwise); nothing about time is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import torch


def post(url: str, body: dict) -> dict:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    try:
        conn.request("POST", u.path + "/chat/completions", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {text[:300]}")
        return json.loads(text)
    finally:
        conn.close()


def load(registry, bodies: list[list[dict]], max_batch_size: int) -> tuple[list[list[str]], float, int]:
    """Send each client's bodies in order, all clients at once; (texts, seconds, completion tokens)."""
    from tunelab.serve.server import ServerThread, ServeSettings

    settings = ServeSettings(port=0, max_queue=len(bodies) + 1, max_batch_size=max_batch_size)
    with ServerThread(registry, settings) as server:
        post(server.url, {**bodies[0][0], "max_tokens": 2})  # warm-up (allocator, first-call costs)

        def client(mine: list[dict]) -> list[dict]:
            return [post(server.url, b) for b in mine]

        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(bodies)) as pool:
            replies = list(pool.map(client, bodies))
        seconds = time.perf_counter() - t0
    texts = [[r["choices"][0]["message"]["content"] for r in rs] for rs in replies]
    tokens = sum(r["usage"]["completion_tokens"] for rs in replies for r in rs)
    return texts, seconds, tokens


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:tiny-code")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clients", default="1,8,32", help="comma-separated concurrent client counts")
    ap.add_argument("--requests", type=int, default=2, help="requests each client sends, one after another")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-batch-size", type=int, default=16, help="of the batched server (the serve default)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tunelab.data.builtin import load_builtin
    from tunelab.serve.registry import load_registry

    registry = load_registry(args.model, device=args.device)
    rows = load_builtin("stdlib-instruct", "train")
    counts = [int(c) for c in args.clients.split(",")]
    print(f"model: {args.model} on {registry.model.device}, torch threads {torch.get_num_threads()}, "
          f"{args.requests} requests per client, max_tokens {args.max_tokens}, greedy; "
          f"batched = --max-batch-size {args.max_batch_size}, one at a time = --max-batch-size 1")
    print(f"{'clients':>7} {'requests':>8} {'tokens':>7} {'batched tok/s':>14} {'one-at-a-time tok/s':>20} {'ratio':>6}")
    same = True
    for c in counts:
        bodies = [[{"model": "base", "temperature": 0, "max_tokens": args.max_tokens,
                    "messages": [{"role": "user", "content": rows[(k * args.requests + j) % len(rows)]["instruction"]}]}
                   for j in range(args.requests)] for k in range(c)]
        texts_b, sec_b, tok_b = load(registry, bodies, args.max_batch_size)
        texts_s, sec_s, tok_s = load(registry, bodies, 1)
        if texts_b != texts_s or tok_b != tok_s:
            same = False
            diff = sum(a != b for x, y in zip(texts_b, texts_s) for a, b in zip(x, y))
            print(f"  {c} clients: {diff} answers differ between batched and one-at-a-time", file=sys.stderr)
        rb, rs = tok_b / sec_b, tok_s / sec_s
        print(f"{c:>7} {c * args.requests:>8} {tok_b:>7} {rb:>14,.0f} {rs:>20,.0f} {rb / rs:>5.1f}x")
    print("identical greedy text per request: " + ("yes" if same else "NO"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
