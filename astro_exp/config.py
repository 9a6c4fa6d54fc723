"""OmegaConf resolvers the configs use (registered on import of the package), and where the
configs themselves are: the package ``astro_exp.conf``.

``${cwd:}`` is the directory the command was started in. Unlike ``${hydra:runtime.cwd}``
it also resolves while Hydra builds a sweep's folder name, before a job exists.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

if TYPE_CHECKING:
    from importlib.abc import Traversable

if not OmegaConf.has_resolver("cwd"):
    OmegaConf.register_new_resolver("cwd", os.getcwd)

# The configs ship inside the package: conf/ is the package astro_exp.conf (setup.py maps it),
# so code finds them the same way from a checkout, an editable install and a wheel.
CONF_PACKAGE = "astro_exp.conf"


def conf_files() -> Traversable:
    """The ``conf/`` folder as package data (``conf_files() / "detector"``, ...)."""
    from importlib.resources import files

    return files(CONF_PACKAGE)


def conf_options(group: str) -> list[str]:
    """The options of a config group: the names of ``conf/<group>/*.yaml``, sorted."""
    folder = conf_files().joinpath(*group.split("/"))
    if not folder.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def read_conf(path: str) -> str:
    """The text of one YAML file of ``conf/`` (``read_conf("share/default.yaml")``)."""
    return conf_files().joinpath(*path.split("/")).read_text(encoding="utf-8")
