"""Imported once by the fork server that starts GPU workers: torch and diffusers load once per machine
process, and each worker forks with them already imported (each import costs seconds of CPU). CUDA is not
initialised here (importing torch does not), so forking stays safe."""

from __future__ import annotations

from studio402.backends.local_gen.offline import set_offline_env

set_offline_env()

import diffusers  # noqa: E402
import torch  # noqa: E402, F401
import transformers  # noqa: E402, F401

_ = diffusers.DiffusionPipeline  # diffusers imports lazily: resolve the pipeline machinery now
