"""The argument checks of :mod:`jaxreg.locality`: those of :mod:`jaxreg._validation`."""

from .._validation import choice, fits_in_memory, float_tuple, int_tuple, integer, number

__all__ = ["choice", "fits_in_memory", "float_tuple", "int_tuple", "integer", "number"]
