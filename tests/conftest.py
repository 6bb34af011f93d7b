"""float64 for every test (the library never enables it at import: that would change every user's
precision as a side effect)."""

import jax

jax.config.update("jax_enable_x64", True)
