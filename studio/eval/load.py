"""Load run: many concurrent users of a running studio, through gradio_client.

    python app.py &                     # or any served studio
    python -m studio.eval.load --url http://127.0.0.1:7860/ --clients 20 --lines 3

Each client renders a script of `--lines` lines with the studio's Generate endpoint and waits
for the finished track. Reports errors and latency percentiles; requests stay on loopback.

A request whose connection drops (the transport, not the studio, failed: e.g. a file download
cut short) is tried once more, as a browser's user would press Generate again; such retries are
counted and reported apart from errors, so a flaky network path is visible but not called a
studio failure. A second drop, or any answer the studio gives that is not a finished track, is
an error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

LINES = ["Good evening and welcome.", "The weather today is mild and dry.", "Thank you for listening.",
         "Tomorrow brings rain in the north.", "That is all for now."]


def run_load(url: str, clients: int = 20, lines: int = 3, voice: str = "slt", model: str = "tacotron",
             timeout: float = 600.0) -> dict:
    from gradio_client import Client

    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("the load run only targets a studio on this machine (loopback)")
    script = "\n".join(f"{voice}: {LINES[i % len(LINES)]}" for i in range(lines))

    def attempt() -> str | None:
        client = Client(url, verbose=False)
        result = client.submit(script, model, "griffinlim", voice, 1.0, 0.0, api_name="/generate").result(
            timeout=timeout)
        ok = isinstance(result, (list, tuple)) and "Done" in str(result[3])
        return None if ok else f"unexpected result {str(result)[:200]}"

    def one(i: int) -> tuple[float, str | None, str | None]:
        t = time.perf_counter()
        dropped = None
        for _ in range(2):
            try:
                error = attempt()
                return time.perf_counter() - t, error, dropped
            except httpx.TransportError as e:  # the connection, not the studio: try once more
                if dropped is not None:
                    return time.perf_counter() - t, f"{type(e).__name__} twice: {e}", dropped
                dropped = f"{type(e).__name__}: {e}"
            except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
                return time.perf_counter() - t, f"{type(e).__name__}: {e}", dropped
        raise AssertionError("unreachable")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(clients)))
    wall = time.perf_counter() - t0
    latencies = sorted(r[0] for r in results)
    errors = [r[1] for r in results if r[1]]
    retried = [r[2] for r in results if r[2]]

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))], 3)

    return {"clients": clients, "lines_per_client": lines, "errors": len(errors), "error_samples": errors[:3],
            "retried": len(retried), "retry_samples": retried[:3],
            "wall_s": round(wall, 2), "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99),
            "mean_s": round(statistics.mean(latencies), 3)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860/")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--lines", type=int, default=3)
    ap.add_argument("--voice", default="slt")
    ap.add_argument("--model", default="tacotron")
    args = ap.parse_args(argv)
    print(json.dumps(run_load(args.url, args.clients, args.lines, args.voice, args.model), indent=2))


if __name__ == "__main__":
    main()
