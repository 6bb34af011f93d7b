"""The reproductions' import path of the runner (:mod:`jaxreg.runner`)."""

from ..runner import CHECKPOINT as CHECKPOINT
from ..runner import CheckpointExists as CheckpointExists
from ..runner import check_resumable as check_resumable
from ..runner import checkpoints as checkpoints
from ..runner import clear_checkpoint as clear_checkpoint
from ..runner import run_chunks as run_chunks
from ..runner import stack_chunks as stack_chunks
