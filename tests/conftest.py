"""float64 for every test (the library never enables it at import; see DESIGN.md)."""

import jax

jax.config.update("jax_enable_x64", True)
