"""Where every benchmark writes its JSON: ``benchmarks/results/NAME.json``."""

import json
import os
import time
from pathlib import Path


def save_json(name: str, out: dict, *, started: float | None = None) -> Path:
    """Write ``out`` as ``benchmarks/results/{name}.json`` (indented), print where, and
    return the path. ``started``: the run's ``time.perf_counter()`` at its start; then
    ``out`` also records the run's ``wall_s`` and the ``load_average_at_end``."""
    if started is not None:
        out = {**out, "load_average_at_end": os.getloadavg(), "wall_s": time.perf_counter() - started}
    path = Path(__file__).parent / "results" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"saved {path}" + (f" ({out['wall_s']:.0f} s)" if started is not None else ""))
    return path
