"""OmegaConf resolvers the configs use (registered on import of the package), where the
configs themselves are (the package ``astro_exp.conf``), and the two things every consumer
of a config node does: read it as plain Python (:func:`to_plain`) and build its
``_target_`` with a one-line error (:func:`build_target`).

``${cwd:}`` is the directory the command was started in. Unlike ``${hydra:runtime.cwd}``
it also resolves while Hydra builds a sweep's folder name, before a job exists.
``${timm_norm:<model name>,mean}`` (or ``std``) is the input normalisation timm's pretrained
weights of that model expect (its ``pretrained_cfg``), and ``${timm_input_size:<model name>}``
the side of the pictures they were trained at: ``conf/model/*.yaml`` read both from there,
so no YAML repeats them.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import ListConfig, OmegaConf

from astro_exp.errors import AstroExpError, ConfigError

if TYPE_CHECKING:
    from importlib.abc import Traversable

# timm's IMAGENET_DEFAULT_MEAN / _STD: a model timm has no pretrained config for gets these
IMAGENET_NORM = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
# and the side of timm's default input_size (3, 224, 224)
DEFAULT_INPUT_SIZE = 224


def _pretrained_cfg(model_name: str) -> Any:
    """timm's default pretrained config of ``model_name`` (its registry: no network); None
    for a name it has none for (``hf-hub:...``, a typo)."""
    if ":" in model_name:
        return None
    from timm.models import get_pretrained_cfg

    try:
        return get_pretrained_cfg(model_name)
    except (RuntimeError, ValueError):
        return None


def timm_norm(model_name: str, key: str) -> list[float]:
    """The ``mean`` or ``std`` that timm's default pretrained weights of ``model_name`` expect.

    Args:
        model_name: a timm model name (``resnet18``, ``vit_tiny_patch16_224``, ...).
        key: ``"mean"`` or ``"std"``.

    Returns:
        Three floats, one a channel; ImageNet's for a name timm has no pretrained config for
        (``hf-hub:...``, a typo: :func:`astro_exp.models.create_model` reports those).

    >>> timm_norm("resnet18", "mean")
    [0.485, 0.456, 0.406]
    >>> timm_norm("vit_tiny_patch16_224", "std")
    [0.5, 0.5, 0.5]
    """
    if key not in IMAGENET_NORM:
        raise ConfigError(f"timm_norm: {key!r} is not a normalisation key; use mean or std")
    value = getattr(_pretrained_cfg(model_name), key, None)
    return [float(v) for v in (value or IMAGENET_NORM[key])]


def timm_input_size(model_name: str) -> int:
    """The side of the pictures timm's default pretrained weights of ``model_name`` were
    trained at (the height of its ``pretrained_cfg.input_size``; square for every model of
    ``conf/model``); 224 for a name timm has no pretrained config for.

    >>> timm_input_size("tf_efficientnet_lite0")
    224
    >>> timm_input_size("tf_efficientnet_lite2")
    260
    """
    size = getattr(_pretrained_cfg(model_name), "input_size", None)
    return int(size[-2]) if size else DEFAULT_INPUT_SIZE


if not OmegaConf.has_resolver("cwd"):
    OmegaConf.register_new_resolver("cwd", os.getcwd)
if not OmegaConf.has_resolver("timm_norm"):
    # a ListConfig, not a list: `--cfg job --resolve` writes the value back into the tree
    OmegaConf.register_new_resolver("timm_norm", lambda m, k: ListConfig(timm_norm(m, k)))
if not OmegaConf.has_resolver("timm_input_size"):
    OmegaConf.register_new_resolver("timm_input_size", timm_input_size)


def to_plain(node: Any) -> Any:
    """A config node as plain Python: an OmegaConf node resolved into dicts and lists, a
    ``Mapping`` as a ``dict`` copy, anything else (``None``, a list, a scalar) as it is.

    >>> to_plain(OmegaConf.create({"a": 1, "b": "${a}"}))
    {'a': 1, 'b': 1}
    >>> to_plain(None) is None
    True
    """
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    if isinstance(node, Mapping):
        return dict(node)
    return node


def build_target(spec: Mapping, what: str, *, hint: str = "", convert: Any = None) -> Any:
    """Call the class a config node names in ``_target_`` with the node's other keys.

    Every mistake a person can make in the node is one :class:`ConfigError` line that names
    ``what`` (``source``, ``detector``, ``augment.ops.rotate``): no ``_target_``, a target that
    does not import, a key the class does not take (with the keys it does), a value it
    refuses. An :class:`AstroExpError` the class raises itself reaches the caller as it is.

    Args:
        spec: the node (OmegaConf or a mapping); ``_target_`` and the other keys.
        what: the config's name in messages.
        hint: what to do when ``_target_`` is missing or wrong (e.g. the options).
        convert: applied to each value before the call (e.g. lists to tuples).

    Returns:
        The built object.

    >>> build_target({"_target_": "fractions.Fraction", "numerator": 3}, "demo")
    Fraction(3, 1)
    >>> build_target({"_target_": "fractions.Fraction", "numerater": 3}, "demo")
    Traceback (most recent call last):
    ...
    astro_exp.errors.ConfigError: demo: Fraction has no parameter(s) ['numerater']; it takes ['denominator', 'numerator']
    """
    node = dict(to_plain(spec) or {})
    target = node.pop("_target_", None)
    tail = f"; {hint}" if hint else ""
    if not target:
        raise ConfigError(f"{what} config has no _target_{tail}")
    from hydra.utils import get_class

    try:
        cls = get_class(str(target))
    except Exception:  # noqa: BLE001 - hydra raises several types here
        raise ConfigError(f"{what}._target_={target!r} is not importable{tail}") from None
    params = {k: convert(v) for k, v in node.items()} if convert else node
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        accepted = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in params if k not in accepted]
    if accepted and not takes_any and unknown:
        raise ConfigError(
            f"{what}: {cls.__name__} has no parameter(s) {unknown}; "
            f"it takes {sorted(k for k in accepted if not k.startswith('_'))}"
        )
    try:
        return cls(**params)
    except AstroExpError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: bad parameters for {target}: {e}") from None


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
