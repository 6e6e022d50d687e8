"""scikit-learn's parameter contract, for estimators that need not depend on scikit-learn.

An estimator's ``__init__`` stores each keyword argument, as given, under its own name and
may check it; ``get_params`` reads them back from the signature, ``set_params`` writes
them (``name__sub`` reaches into a parameter that has ``set_params`` itself) and checks
again. That is all ``sklearn.base.clone`` and imbalanced-learn's pipelines need
(``sklearn.base.BaseEstimator`` does the same).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

__all__ = ["EstimatorParams", "NotFittedError", "Param", "rank_settings", "sampler_tags"]


class NotFittedError(RuntimeError, AttributeError):
    """A fitted attribute or method of an estimator that is not fitted yet (an
    ``AttributeError`` too, so that ``hasattr`` is False before ``fit``)."""


class EstimatorParams:
    """``get_params`` / ``set_params`` from the ``__init__`` signature.

    Subclasses implement ``_check_params()``, which raises on a bad value.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(name for name in signature.parameters if name != "self")

    def _check_params(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def __repr__(self) -> str:
        """The class and the parameters that differ from their defaults, as scikit-learn
        shows an estimator: ``DeepSMOTE(k_neighbors=3, random_state=0)``."""
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if repr(value) != repr(defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments, as given.

        Args:
            deep: Also return the parameters of arguments that have ``get_params`` (a
                scikit-learn ``knn`` object, say), as ``<name>__<parameter>``.
        """
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            if (
                deep
                and not isinstance(value, type)
                and callable(getattr(value, "get_params", None))
            ):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> EstimatorParams:
        """Set constructor arguments (``<name>__<parameter>`` reaches into an argument).

        A fitted estimator keeps its fitted state until it is fitted again. A bad value
        changes nothing: the arguments set here go back to what they were.

        Returns:
            ``self``.

        Raises:
            ValueError: An unknown parameter, or a bad value.
        """
        valid = self._param_names()
        direct: dict[str, Any] = {}
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"`{name}` should be one of the parameters of {type(self).__name__} "
                    f"({', '.join(valid)}), but got {key}={value!r}."
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                direct[name] = value
        before = {name: getattr(self, name) for name in direct}
        for name, value in direct.items():
            setattr(self, name, value)
        try:
            for name, sub_params in nested.items():
                getattr(self, name).set_params(**sub_params)
            self._check_params()
        except Exception:
            for name, value in before.items():
                setattr(self, name, value)
            raise
        return self


class Param(NamedTuple):
    """One constructor argument: its check and its role.

    ``role``: ``'weights'`` changes the trained weights and codes (the training fingerprint
    of the cache and the checkpoint), ``'index'`` shapes the neighbour tables (rebuilt
    without training), ``'serving'`` changes only how new images are drawn and made,
    ``'process'`` belongs to this process (where it runs, what it shows and writes).
    ``ranks``: what the ranks of a process group must agree on before fitting together:
    ``'same'`` the value, ``None`` nothing, or a function of the value (what of it must
    agree: a ``knn`` backend's class, whether a folder is given).
    """

    check: Callable[[str, Any], Any] | None  # None: checked by TrainingConfig
    role: str
    ranks: str | Callable[[Any], Any] | None = "same"


def rank_settings(table: dict[str, Param], params: dict[str, Any]) -> dict[str, Any]:
    """What the ranks of a process group must agree on, by each parameter's ``ranks``."""
    settings = {}
    for name, param in table.items():
        if param.ranks == "same":
            settings[name] = params[name]
        elif callable(param.ranks):
            settings[name] = param.ranks(params[name])
    return settings


def sampler_tags() -> Any:
    """The tags of a sampler that needs ``y`` (``__sklearn_tags__``), as imbalanced-learn's
    ``BaseSampler`` gives them: imbalanced-learn's ``Tags`` (estimator type ``'sampler'``,
    sampler tags) where it is installed, else scikit-learn's.

    Note:
        Imported here, when scikit-learn asks for the tags (so it is installed): the library
        itself depends on neither. The input tags are the defaults: dense 2-D rows.
    """
    from sklearn.utils import InputTags, Tags, TargetTags

    try:
        from imblearn.utils._tags import InputTags, SamplerTags, Tags
    except ImportError:  # scikit-learn's tags have no sampler part
        SamplerTags = None
    tags = Tags(
        estimator_type="sampler",
        target_tags=TargetTags(required=True),
        transformer_tags=None,
        regressor_tags=None,
        classifier_tags=None,
    )
    if SamplerTags is not None:
        tags.sampler_tags = SamplerTags()
    tags.input_tags = InputTags()
    return tags
