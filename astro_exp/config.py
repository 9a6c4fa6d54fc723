"""OmegaConf resolvers the configs use; registered on import of the package.

``${cwd:}`` is the directory the command was started in. Unlike ``${hydra:runtime.cwd}``
it also resolves while Hydra builds a sweep's folder name, before a job exists.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf

if not OmegaConf.has_resolver("cwd"):
    OmegaConf.register_new_resolver("cwd", os.getcwd)
