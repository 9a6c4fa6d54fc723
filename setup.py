"""Package discovery for setuptools; everything else is in pyproject.toml.

Why a setup.py: the configs live in the top-level ``conf/`` folder yet ship as the package
``astro_exp.conf`` (Hydra composes them with ``config_path="pkg://astro_exp.conf"``).
pyproject.toml can map a folder to a package (``package-dir``) but cannot add that package
to the ones its discovery finds; here discovery and the mapped package are one list, so a
new subpackage of astro_exp or a new config group ships without editing this file.
"""

from setuptools import find_namespace_packages, setup

# config groups (conf/model, conf/hydra/launcher, ...): folders of YAML, listed so that
# setuptools ships them as part of astro_exp.conf rather than warning about them
CONF_GROUPS = [f"astro_exp.conf.{name}" for name in find_namespace_packages(where="conf")]

setup(
    # hydra_plugins.astro_exp_sweeper: the shim that registers the Optuna sweeper with Hydra,
    # which loads plugins only from the hydra_plugins namespace
    packages=[
        *find_namespace_packages(include=["astro_exp*", "hydra_plugins.*"]),
        "astro_exp.conf",
        *CONF_GROUPS,
    ],
    package_dir={"astro_exp.conf": "conf"},
)
