"""A dataset's kind is resolved once, through a registry the integrations fill."""

import ast
from pathlib import Path

import pytest
import torch
from helpers import TINY, make_shapes
from torch.utils.data import ConcatDataset, Dataset, Subset, TensorDataset
from torchvision.datasets.vision import StandardTransform

import torch_deepsmote
from torch_deepsmote import OversampledDataset, adapters
from torch_deepsmote.adapters import DatasetAdapter, Kind, kind_of, register_kind


class Shelf(Dataset):
    """A dataset of a kind of its own: labels in ``shelf_labels``, a transform in ``hook``."""

    def __init__(self, images, labels):
        self.images, self.shelf_labels, self.hook, self.reads = images, labels, None, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.reads += 1
        image = self.images[i]
        return (image if self.hook is None else self.hook(image)), int(self.shelf_labels[i])


class ShelfKind(Kind):
    handles = staticmethod(lambda dataset: isinstance(dataset, Shelf))
    asides: list = []

    def has_transforms(self):
        return True

    def labels(self, label_key):
        return torch.as_tensor(self.dataset.shelf_labels)

    def classes(self, label_key):
        return ["stripes", "bars"]

    def set_aside(self):
        saved, self.dataset.hook = self.dataset.hook, None
        ShelfKind.asides.append(saved)

        def restore():
            self.dataset.hook = saved

        return restore

    def item_transform(self, layout):
        hook = self.dataset.hook
        return lambda items: [(hook(image), target) for image, target in items]


@pytest.fixture
def shelf_kind():
    register_kind(ShelfKind)
    yield ShelfKind
    adapters._KINDS.remove(ShelfKind)
    ShelfKind.asides.clear()


def test_a_registered_kind_is_found_through_wrappers_and_used_for_the_whole_read(shelf_kind):
    X, y = make_shapes((30, 10), size=8)
    shelf = Shelf(torch.from_numpy(X), torch.from_numpy(y))
    shelf.hook = lambda image: 255 - image  # set aside while fitting, applied after
    wrapped = ConcatDataset([Subset(shelf, range(40))])
    adapter = DatasetAdapter(wrapped)
    assert [type(kind) for kind in adapter.kinds] == [ShelfKind]
    assert adapter.labels().tolist() == y.tolist() and adapter.classes() == ["stripes", "bars"]
    ds = OversampledDataset(wrapped, random_state=0, knn="torch", **TINY)
    assert len(ShelfKind.asides) == 1 and shelf.hook is not None  # set aside once, restored
    assert ds.classes == ["stripes", "bars"]
    # Real items through the dataset's own hook; synthetic ones through the kind's transform.
    assert torch.equal(ds[0][0], 255 - torch.from_numpy(X[0]))
    raw = ds.raw_items(ds.plan()[:1])[0][0]
    assert torch.equal(ds[ds.n_real][0], 255 - raw)


def test_labels_of_mixed_kinds_use_the_kinds_resolved_once(shelf_kind, monkeypatch):
    shelf = Shelf(torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([1, 0, 1, 1]))
    plain = TensorDataset(torch.zeros(3, 1, 4, 4), torch.tensor([0, 0, 1]))
    adapter = DatasetAdapter(ConcatDataset([Subset(shelf, [3, 1]), plain, shelf]))
    assert [type(kind) for kind in adapter.kinds] == [ShelfKind, Kind, ShelfKind]

    def asked_again(*args, **kwargs):
        raise AssertionError("the dataset's kind was asked again")

    monkeypatch.setattr(adapters, "kind_of", asked_again)
    assert adapter.labels().tolist() == [1, 0, 0, 0, 1, 1, 0, 1, 1]


def test_an_unregistered_dataset_gets_the_torchvision_kind():
    dataset = TensorDataset(torch.zeros(3, 1, 4, 4), torch.tensor([0, 1, 1]))
    assert type(kind_of(dataset)) is Kind
    assert DatasetAdapter(dataset).labels().tolist() == [0, 1, 1]


def test_the_wrappers_transforms_go_through_torchvisions_standard_transform(
    data_tensor, monkeypatch
):
    import torch_deepsmote.dataset as module

    calls = []

    class Recording(StandardTransform):
        def __call__(self, input, target):
            calls.append(target)
            return super().__call__(input, target)

    monkeypatch.setattr(module, "StandardTransform", Recording)
    ds = OversampledDataset(
        data_tensor,
        transform=lambda image: image.float() / 255,
        random_state=0,
        knn="torch",
        **TINY,
    )
    image, target = ds[ds.n_real]
    assert image.dtype == torch.float32 and float(image.max()) <= 1 and calls == [target]
    real, _ = ds[0]  # real items untouched unless transform_real
    assert real.dtype == torch.uint8 and len(calls) == 1


def test_no_core_module_imports_an_integration():
    """Layers point one way: only the package's __init__ (the top) imports integrations."""
    root = Path(torch_deepsmote.__file__).parent
    importers = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if relative.parts[0] == "integrations" or relative == Path("__init__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any("integrations" in name.split(".") for name in names):
                importers.append(str(relative))
    assert importers == []


@pytest.fixture
def data_tensor():
    X, y = make_shapes((30, 10), size=8)
    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
