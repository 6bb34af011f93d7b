"""Saved results, for users: :func:`load` (an :class:`xarray.Dataset`),
:func:`load_results` (plain NumPy and JSON), :func:`save_results` and :func:`export`
(netCDF or Zarr). The store (:mod:`jaxreg_lab.store`) implements them."""

from jaxreg_lab.store.dataset import export as export
from jaxreg_lab.store.dataset import load as load
from jaxreg_lab.store.dataset import to_dataset as to_dataset
from jaxreg_lab.store.results import Results as Results
from jaxreg_lab.store.results import load_results as load_results
from jaxreg_lab.store.results import save_results as save_results

__all__ = ["Results", "export", "load", "load_results", "save_results", "to_dataset"]
