"""`python -m studio eval {quality,speed,report}`: results go to reports/*.json, the report to
reports/eval.md (tables and PNG plots)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

REPORTS = Path("reports")


def add_eval_arguments(p) -> None:
    p.add_argument("what", choices=["quality", "speed", "report"])
    p.add_argument("--model", default="tacotron", help="acoustic model, 'teacher' or 'copy' (vocoder check)")
    p.add_argument("--vocoder", default="griffinlim")
    p.add_argument("--voices", nargs="+")
    p.add_argument("--limit", type=int, default=100,
                   help="held-out sentences per voice (with 30 the 95%% interval of a WER ratio is about +-0.4 wide)")
    p.add_argument("--no-hard", action="store_true", help="skip the hard-sentence alignment check")
    p.add_argument("--no-peers", action="store_true", help="speed: skip the peer implementations")
    p.add_argument("--reports", type=Path, default=REPORTS)
    p.add_argument("--readme", type=Path, help="report: also rewrite the tables below '<!-- numbers -->' in this file")


def run_eval(args) -> None:
    from studio.engine import Engine

    logging.getLogger("studio").setLevel(logging.INFO)
    out_dir = args.reports
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.what == "report":
        from studio.eval.report import write_report

        path = write_report(out_dir)
        print(json.dumps({"report": str(path)}) if args.json else f"wrote {path}")
        if args.readme:
            from studio.eval.report import update_readme

            update_readme(args.readme, out_dir)
            print(json.dumps({"readme": str(args.readme)}) if args.json else f"updated {args.readme}")
        return
    engine = Engine(args.checkpoints)
    if args.what == "quality":
        from studio.eval.quality import evaluate_quality

        res = evaluate_quality(engine, args.model, args.vocoder, args.voices, args.limit, hard=not args.no_hard,
                               save_dir=out_dir / "audio")
        name = f"quality_{args.model}_{args.vocoder}.json" if args.model != "teacher" else "quality_teacher.json"
    else:
        from studio.eval.speed import evaluate_speed

        res = evaluate_speed(engine, limit=min(args.limit, 10), peers=not args.no_peers)
        name = "speed.json"
    (out_dir / name).write_text(json.dumps(res, indent=2))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(json.dumps({k: v for k, v in res.items() if k != "hard"}, indent=2))
        print(f"saved {out_dir / name}")
