"""A user's dataset, resolved once: its labels, class names and transforms, and its items.

A map-style dataset says what it is in one of a few ways. torchvision's convention (and
any dataset with such attributes) keeps labels in ``.targets`` / ``.labels``, names in
``.classes`` and applies ``transform`` / ``target_transform`` (or a joint ``transforms``)
in ``__getitem__``. Other kinds (Hugging Face ``datasets``, MONAI) follow their own
rules: each is a ``Kind``, and the integrations register theirs
(``register_kind``), so the core never imports them. ``Subset`` and ``ConcatDataset``
are routed through like they route indices.

``DatasetAdapter`` asks the question once, for the whole dataset: it finds labels
and class names without reading an image where the metadata has them, sets the
transforms aside while the library reads raw images (random augmentation stays out of
the autoencoder's data), and, once the raw items' form is known
(``DatasetAdapter.items``), makes synthetic items in that form and passes them through the
dataset's own transforms and the wrapper's, in one place (``ItemMaker``).

Note:
    Setting transforms aside mutates the user's dataset for the duration of the read; it is
    not safe while another thread reads the same dataset object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Subset, TensorDataset
from torchvision.datasets.vision import StandardTransform

from ._format import ImageFormat
from ._items import EXTRA_KEYS, ItemLayout
from ._labels import TargetFormat, as_labels
from ._validation import check_choice

__all__ = ["DatasetAdapter", "ItemMaker", "Kind", "find_classes", "find_labels"]
__all__ += ["register_kind", "split_compose"]

ItemsTransform = Callable[[list], list]
_TRANSFORM_ATTRS = ("transform", "target_transform", "transforms")


class Kind:
    """How one dataset (not a ``Subset`` or ``ConcatDataset``) keeps its labels, class names
    and transforms: torchvision's convention. Subclasses registered with
    ``register_kind`` handle other kinds.

    Args:
        dataset: The dataset.
    """

    def __init__(self, dataset: Any, keep_head: bool = True) -> None:
        self.dataset = dataset
        self.keep_head = keep_head  # False: the user's fit_transform overrides the head

    @staticmethod
    def handles(dataset: Any) -> bool:
        """Whether this kind applies to ``dataset`` (the base kind applies to any)."""
        return True

    def has_transforms(self) -> bool:
        return hasattr(self.dataset, "transform")

    def default_keys(self, image_key: Any, label_key: Any) -> tuple[Any, Any]:
        """``(image_key, label_key)`` completed from the dataset's own description."""
        return image_key, label_key

    def labels(self, label_key: Any) -> Tensor | None:
        """(N,) int64 labels from metadata (no image read), or ``None``."""
        dataset = self.dataset
        if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
            return _as_labels(dataset.tensors[1])
        for attr in ("targets", "labels"):
            values = getattr(dataset, attr, None)
            if values is not None:
                labels = _as_labels(values)
                if labels is not None and len(labels) == len(dataset):
                    return labels
        return None

    def classes(self, label_key: Any) -> list | None:
        classes = getattr(self.dataset, "classes", None)
        return list(classes) if classes is not None else None

    def set_aside(self) -> Callable[[], None]:
        """Set the transforms aside (raw items, as torchvision's v2 dataset wrapper reads
        them); returns the function that restores them. A ``Compose`` keeps its
        deterministic head (``split_compose``): the images are read in its output form."""
        owner = self.dataset
        saved = {name: getattr(owner, name) for name in _TRANSFORM_ATTRS if hasattr(owner, name)}
        head, _ = split_compose(saved.get("transform")) if self.keep_head else (None, None)
        for name in saved:
            setattr(owner, name, None)
        if head is not None:
            owner.transform = head
            if isinstance(saved.get("transforms"), StandardTransform):
                owner.transforms = StandardTransform(head, None)

        def restore() -> None:
            for name, value in saved.items():
                setattr(owner, name, value)

        return restore

    def item_transform(self, layout: ItemLayout) -> ItemsTransform | None:
        """What ``__getitem__`` applies to raw items of ``layout``, for a list of them:
        the joint ``transforms`` (VOC, COCO) or ``transform`` and ``target_transform``
        (MNIST, ImageFolder, whose ``transforms`` is their ``StandardTransform``)."""
        joint = getattr(self.dataset, "transforms", None)
        if joint is None or isinstance(joint, StandardTransform):
            transform = getattr(self.dataset, "transform", None)
            head, tail = split_compose(transform) if self.keep_head else (None, None)
            if head is not None:  # synthetic items are made in the head's output form
                transform = tail
            target_transform = getattr(self.dataset, "target_transform", None)
            if transform is None and target_transform is None:
                return None
            joint = StandardTransform(transform, target_transform)
        return PairItems(joint, layout, "the dataset's transform")


# torchvision transforms (v1 and v2) that give the same output for the same input: a
# Compose's head of these is applied while fitting; anything else (Random*, RandAugment,
# AutoAugment, ColorJitter, a Lambda the library cannot judge) starts its random tail.
DETERMINISTIC_TRANSFORMS = frozenset(
    {
        "Resize",
        "CenterCrop",
        "Grayscale",
        "ToTensor",
        "PILToTensor",
        "ToImage",
        "ToPureTensor",
        "ToPILImage",
        "ConvertImageDtype",
        "ToDtype",
        "Normalize",
    }
)


def split_compose(transform: Any) -> tuple[Any, Any]:
    """``(head, tail)`` of a torchvision ``Compose`` (``transforms`` or ``transforms.v2``):
    the head its leading deterministic transforms, the tail the rest (``None`` when empty).
    ``(None, transform)`` for anything else, or a ``Compose`` that starts randomly.

    Examples:
        >>> from torchvision.transforms import Compose, RandomHorizontalFlip, Resize, ToTensor
        >>> head, tail = split_compose(Compose([Resize(8), RandomHorizontalFlip(), ToTensor()]))
        >>> [type(t).__name__ for t in head.transforms], [type(t).__name__ for t in tail.transforms]
        (['Resize'], ['RandomHorizontalFlip', 'ToTensor'])
    """
    parts = getattr(transform, "transforms", None)
    if type(transform).__name__ != "Compose" or not isinstance(parts, (list, tuple)):
        return None, transform
    first = next(
        (i for i, t in enumerate(parts) if type(t).__name__ not in DETERMINISTIC_TRANSFORMS),
        len(parts),
    )
    if first == 0:
        return None, transform
    tail = type(transform)(list(parts[first:])) if first < len(parts) else None
    return type(transform)(list(parts[:first])), tail


_KINDS: list[type[Kind]] = []


def register_kind(kind: type[Kind]) -> type[Kind]:
    """Register a ``Kind`` (as a class decorator); later registrations are asked
    first, the base kind last."""
    if kind not in _KINDS:
        _KINDS.insert(0, kind)
    return kind


def kind_of(dataset: Any, keep_head: bool = True) -> Kind:
    """The registered kind that handles ``dataset`` (the base kind when none does)."""
    found = next((kind for kind in _KINDS if kind.handles(dataset)), Kind)(dataset)
    found.keep_head = keep_head
    return found


def _as_labels(values: Any) -> Tensor | None:
    """``values`` as labels, or ``None`` where a ``targets`` attribute holds something else
    (boxes, masks, strings)."""
    try:
        return as_labels(values, "targets")
    except (TypeError, ValueError):
        return None


def _parts(dataset: Any) -> list[Any]:
    """The datasets behind ``Subset`` and ``ConcatDataset`` wrappers, in index order."""
    if isinstance(dataset, Subset):
        return _parts(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [part for inner in dataset.datasets for part in _parts(inner)]
    return [dataset]


class DatasetAdapter:
    """A dataset's kind, resolved once, and where its items hold image and label.

    Args:
        dataset: A map-style dataset (``Subset`` and ``ConcatDataset`` routed through).
        image_key: Where items hold the image (a dict key or a tuple position); ``None``
            finds it (the kind's description, or the item's keys when read).
        label_key: Likewise for the target.
        extra_keys: ``'fill'`` or ``'drop'``: what synthetic items do with the other fields
            (``torch_deepsmote._items``).
        keep_head: Keep a torchvision ``Compose``'s deterministic head while fitting
            (``split_compose``); ``False`` sets the whole transform aside (a
            ``fit_transform`` stands in for it).
    """

    def __init__(
        self,
        dataset: Any,
        image_key: Any = None,
        label_key: Any = None,
        extra_keys: str = "fill",
        keep_head: bool = True,
    ) -> None:
        self.extra_keys = check_choice("extra_keys", extra_keys, EXTRA_KEYS)
        self.dataset = dataset
        self.kinds = [kind_of(part, keep_head) for part in _parts(dataset)]
        self.image_key, self.label_key = self.kinds[0].default_keys(image_key, label_key)

    @property
    def owners(self) -> list[Kind]:
        """The parts that hold transforms, in index order."""
        return [kind for kind in self.kinds if kind.has_transforms()]

    # ------------------------------------------------------------------ metadata
    def labels(self) -> Tensor | None:
        """(N,) int64 class labels from the metadata, or ``None`` where a part has none."""
        return self._labels(self.dataset, iter(self.kinds))

    def _labels(self, dataset: Any, kinds: Iterator[Kind]) -> Tensor | None:
        # The wrappers routed as in _parts, so the leaves meet their kinds in order.
        if isinstance(dataset, Subset):
            parent = self._labels(dataset.dataset, kinds)
            return None if parent is None else parent[torch.as_tensor(list(dataset.indices))]
        if isinstance(dataset, ConcatDataset):
            parts = [self._labels(part, kinds) for part in dataset.datasets]
            return None if any(p is None for p in parts) else torch.cat(parts)
        return next(kinds).labels(self.label_key)

    def classes(self) -> list | None:
        """The first part's ``classes`` (torchvision's convention; Hugging Face's
        ``ClassLabel`` names)."""
        return self.kinds[0].classes(self.label_key)

    def class_to_idx(self, labels: Tensor) -> dict:
        """``{class name: label}``: the dataset's own, else ``classes[i]`` names label ``i``,
        else every label of ``labels`` stands for itself."""
        mapping = getattr(self.kinds[0].dataset, "class_to_idx", None)
        if mapping:
            return dict(mapping)
        names = self.classes()
        if names is not None:
            return {name: i for i, name in enumerate(names)}
        return {label: label for label in torch.unique(labels).tolist()}

    def n_classes(self) -> int | None:
        """How many classes the parts list (the largest), or ``None`` where one lists none:
        read labels are checked against it."""
        counts = [kind.classes(self.label_key) for kind in self.kinds]
        if any(not names for names in counts):
            return None
        return max(len(names) for names in counts)

    # ------------------------------------------------------------------ transforms
    @contextlib.contextmanager
    def raw_items(self) -> Iterator[None]:
        """Set every part's transforms aside while reading, and restore them afterwards."""
        restores: list[Callable[[], None]] = []
        try:
            for kind in self.owners:
                restores.append(kind.set_aside())
            yield
        finally:
            for restore in reversed(restores):
                restore()

    def items(
        self,
        layout: ItemLayout,
        image_format: ImageFormat,
        target_format: TargetFormat,
    ) -> ItemMaker:
        """The maker of synthetic items in the form of raw items read as ``layout``,
        ``image_format`` and ``target_format`` (the first part's transforms apply)."""
        owners = self.owners
        own = owners[0].item_transform(layout) if owners else None
        return ItemMaker(layout, image_format, target_format, own)

    def transforms_differ(self) -> bool:
        """Whether the parts hold different transforms (synthetic items use the first's)."""
        owners = self.owners
        first = getattr(owners[0].dataset, "transform", None) if owners else None
        return any(getattr(o.dataset, "transform", None) is not first for o in owners[1:])


class ItemMaker:
    """Items in the dataset's form, the one place where transforms are applied.

    Synthetic images become raw items (the raw images' container, the layout's keys, the
    targets' type), then go through the dataset's own transforms and the wrapper's
    ``transform`` / ``target_transform`` (a torchvision ``StandardTransform``, built by the
    caller on use so that a transform set later applies too). Real items get the wrapper's
    only when asked.

    Args:
        layout: Where raw items hold image and label.
        image_format: The raw images' form.
        target_format: The raw targets' type.
        own: The dataset's own transform of a list of raw items, or ``None``.
    """

    def __init__(
        self,
        layout: ItemLayout,
        image_format: ImageFormat,
        target_format: TargetFormat,
        own: ItemsTransform | None,
    ) -> None:
        self.layout, self.image_format, self.target_format = layout, image_format, target_format
        self.own = own

    def raw(self, images: Tensor, labels: Tensor) -> list:
        """(m, C, H, W) images of this format's dtype and (m,) labels -> m raw items."""
        pictures = self.image_format.items(images)
        targets = self.target_format.make(labels)
        return [self.layout.build(image, target) for image, target in zip(pictures, targets)]

    def synthetic(
        self, images: Tensor, labels: Tensor, wrapper: StandardTransform | None = None
    ) -> list:
        """Raw items of ``images`` and ``labels`` through the dataset's transforms, then
        ``wrapper``."""
        items = self.raw(images, labels)
        if self.own is not None:
            items = [self.layout.strip(item) for item in self.own(items)]
        return [self._wrap(item, wrapper) for item in items]

    def real(self, item: Any, wrapper: StandardTransform | None = None) -> Any:
        """A real item, its extra fields dropped where asked, then through ``wrapper``."""
        return self._wrap(self.layout.strip(item), wrapper)

    def _wrap(self, item: Any, wrapper: StandardTransform | None) -> Any:
        if wrapper is None or (wrapper.transform is None and wrapper.target_transform is None):
            return item
        return self.layout.apply(item, wrapper, "transform")


class PairItems:
    """Applies an (image, target) transform to the image and target of every item."""

    def __init__(self, pair: Callable[[Any, Any], tuple], layout: ItemLayout, name: str) -> None:
        self.pair, self.layout, self.name = pair, layout, name

    def __call__(self, items: list) -> list:
        return [self.layout.apply(item, self.pair, self.name) for item in items]


# ---------------------------------------------------------------------- conveniences
def find_labels(dataset: Any, label_key: Any = None) -> Tensor | None:
    """Class labels (N,) int64 from the dataset's metadata, or ``None`` when it has none."""
    return DatasetAdapter(dataset, label_key=label_key).labels()


def find_classes(dataset: Any, label_key: Any = None) -> list | None:
    """The dataset's class names (``classes``, a ``ClassLabel``'s names), or ``None``."""
    return DatasetAdapter(dataset, label_key=label_key).classes()
