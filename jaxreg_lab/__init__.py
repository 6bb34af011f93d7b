"""jaxreg's lab: everything that runs, saves and shows, on top of the library :mod:`jaxreg`.

The ``jaxreg`` command (:mod:`jaxreg_lab.cli`), the chunked, checkpointed driver
(:mod:`jaxreg_lab.driver`), the store of results and checkpoints (:mod:`jaxreg_lab.store`,
the only code that opens files), the named reproductions
(:mod:`jaxreg_lab.reproductions`), plotting and the theorem checks (:mod:`jaxreg_lab.verify`).

Saved results load with :func:`jaxreg_lab.results.load` (an xarray Dataset). Importing
this package loads neither JAX nor NumPy, so ``jaxreg --help`` and ``jaxreg list`` answer at once.
"""

__version__ = "0.2.0"
