"""Named reproductions: each module has a frozen ``Config`` (with ``preset(size)``),
``run(config, *, out_dir, resume, progress) -> dict``, ``plot(results, out_dir)`` and
``summary(results) -> str``. The dict ``run`` returns holds ``arrays``, ``coords``,
``status`` and ``wall_time``, and optionally ``extra``: scalars recorded at the top level
of ``results.json``. Their names, descriptions and references are registered in
:mod:`jaxreg_lab.registry` (readable without JAX); :data:`EXPERIMENTS` maps each name to its
module, in the registry's order."""

import importlib

from jaxreg_lab.registry import REPRODUCTIONS

EXPERIMENTS = {r.name: importlib.import_module(f".{r.module}", __name__) for r in REPRODUCTIONS}
