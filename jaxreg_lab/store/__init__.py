"""The only code of jaxreg that opens files: results (:mod:`.results`, :mod:`.dataset`),
atomic writes and checksums (:mod:`.files`), ``--out`` checks (:mod:`.out`), the lock
of one writer per results directory (:mod:`.lock`) and the cache of generated data
(:mod:`.data_cache`)."""

# the name prefix of the writability probe of the --out checks (:mod:`.out`): another
# process of a --distributed run may be probing a directory while this one lists it
PROBE_PREFIX = ".jaxreg-probe-"
