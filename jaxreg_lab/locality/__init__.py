"""The CNN-locality reproductions (Razin, Maman, Cohen, ICML 2022): their configs and
presets, the runs over a grid of ranges x lambdas x seeds, figures and tables."""

from jaxreg_lab.locality.configs import ModelSpec as ModelSpec
from jaxreg_lab.locality.experiments import IsSameClassConfig as IsSameClassConfig
from jaxreg_lab.locality.experiments import PathfinderConfig as PathfinderConfig
from jaxreg_lab.locality.experiments import plot_locality as plot_locality
from jaxreg_lab.locality.experiments import run_is_same_class as run_is_same_class
from jaxreg_lab.locality.experiments import run_locality as run_locality
from jaxreg_lab.locality.experiments import run_pathfinder as run_pathfinder
from jaxreg_lab.locality.report import plot_samples as plot_samples
from jaxreg_lab.store.data_cache import cache_dir as cache_dir
