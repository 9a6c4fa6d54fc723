"""The Hydra configs, shipped inside the package as ``astro_exp.conf``.

The folder stays at the top of the repository (where people look for it); setup.py maps it
to ``astro_exp.conf`` so that every entry point composes it with
``config_path="pkg://astro_exp.conf"``, from a checkout, an editable install or a wheel alike.
"""
