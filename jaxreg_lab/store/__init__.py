"""The only code of jaxreg that opens files: results (:mod:`.results`, :mod:`.dataset`),
atomic writes and checksums (:mod:`.files`), ``--out`` checks (:mod:`.out`) and the
cache of generated data (:mod:`.data_cache`)."""
