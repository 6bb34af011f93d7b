"""Where every benchmark writes its JSON: ``benchmarks/results/NAME.json``."""

import json
from pathlib import Path


def save_json(name: str, out: dict) -> Path:
    """Write ``out`` as ``benchmarks/results/{name}.json`` (indented) and return the path."""
    path = Path(__file__).parent / "results" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    return path
